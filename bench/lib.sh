# Shared by bench/pinned.sh and bench/compare.sh (sourced, not run).
#
# start_ephemera DIR PORT CPU: a release `ephemera serve` pinned to CPU on a
# fresh durable SQLite file in DIR, configured as ephemera-bench expects
# (scopes read and write; the per-address limits out of the way, since all
# the load comes from one address), with the user and the two clients the
# tool uses, and PRELOAD_GRANTS (default 0) grants stored before it starts.
# Sets EPHEMERA_PID. BIN=DIR takes both binaries from DIR instead of
# target/release (a copy of an earlier build, to measure a change before
# and after in the same run).
bin=${BIN:-target/release}

bench_password=bench-password-correct-horse
rs_secret=bench-rs-secret-0123456789abcdef0123
app_secret=bench-app-secret-0123456789abcdef01

wait_ready() { # URL
    for _ in $(seq 300); do curl -fs "$1" >/dev/null && return 0; sleep 0.1; done
    echo "not ready: $1" >&2
    return 1
}

start_ephemera() { # DIR PORT CPU
    local dir=$1 port=$2 cpu=$3
    cat >"$dir/ephemera.toml" <<TOML
listen = "127.0.0.1:$port"
issuer = "http://127.0.0.1:$port"
database = "sqlite://$dir/ephemera.db"

[scopes]
supported = ["read", "write"]

[limits]
par_per_minute = 0
authorize_per_minute = 0
token_per_minute = 0
login_per_minute = 0

[registration]
per_minute = 4000000000

[pushed_clients]
max_pending_requests = 10000000
TOML
    export EPHEMERA_CONFIG="$dir/ephemera.toml"
    "$bin/ephemera" migrate >/dev/null
    printf '%s' "$bench_password" | "$bin/ephemera" user add bench --password-stdin >/dev/null
    printf '%s' "$rs_secret" | "$bin/ephemera" client add bench-rs --confidential --secret-stdin --introspect >/dev/null
    printf '%s' "$app_secret" | "$bin/ephemera" client add bench-app --confidential --secret-stdin \
        --redirect-uri http://127.0.0.1:9999/cb >/dev/null
    if [ "${PRELOAD_GRANTS:-0}" -gt 0 ]; then
        "$bin/ephemera-bench" --preload-grants "$PRELOAD_GRANTS" --preload-into "sqlite://$dir/ephemera.db"
        # The tool exits without waiting for its connections to close and
        # checkpoint: copy its WAL (up to 128 MiB) into the file now, or the
        # server's first scenarios pay for copying the preload.
        sqlite3 "$dir/ephemera.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    fi
    EPHEMERA_LOG=${EPHEMERA_LOG:-warn} taskset -c "$cpu" "$bin/ephemera" serve >"$dir/ephemera.log" 2>&1 &
    EPHEMERA_PID=$!
    wait_ready "http://127.0.0.1:$port/readyz"
}

# start_peer DIR PORT CPU: node-oidc-provider (bench/peer/server.mjs) pinned
# to CPU, after `npm ci` when its node_modules are missing. Sets PEER_PID.
start_peer() { # DIR PORT CPU
    local dir=$1 port=$2 cpu=$3
    if [ ! -d bench/peer/node_modules/oidc-provider ]; then
        (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error)
    fi
    PORT=$port NODE_ENV=production taskset -c "$cpu" node bench/peer/server.mjs >"$dir/peer.log" 2>&1 &
    PEER_PID=$!
    wait_ready "http://127.0.0.1:$port/.well-known/openid-configuration"
}
