#!/usr/bin/env bash
# Ephemera alone on one core, the load generator on the other: starts a
# release `ephemera serve` pinned to CPU 0 on a fresh SQLite file (rate limits
# off: all the load comes from one address), seeds the user and client
# ephemera-bench expects, runs ephemera-bench pinned to CPU 1 with the
# arguments given (e.g. --seconds 5 --concurrency 32), and prints the
# server's peak RSS (VmHWM). Build first:
#   cargo build --release -p ephemera-server -p ephemera-bench
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
port=${PORT:-18080}
export EPHEMERA_DATABASE="sqlite://$dir/ephemera.db"
export EPHEMERA_LIMITS__PAR_PER_MINUTE=0 EPHEMERA_LIMITS__TOKEN_PER_MINUTE=0 EPHEMERA_LIMITS__LOGIN_PER_MINUTE=0
export EPHEMERA_PUSHED_CLIENTS__MAX_PENDING_REQUESTS=10000000
export RUST_LOG=${RUST_LOG:-warn}
"$bin/ephemera" migrate >/dev/null
printf 'bench-password-0123456789' | "$bin/ephemera" user add bench --password-stdin >/dev/null
printf 'bench-rs-secret-0123456789abcdef0123' | "$bin/ephemera" client add bench-rs --confidential --secret-stdin --introspect >/dev/null
taskset -c 0 "$bin/ephemera" serve --listen "127.0.0.1:$port" --issuer "http://127.0.0.1:$port" >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
taskset -c 1 "$bin/ephemera-bench" --target "http://127.0.0.1:$port" --user bench \
    --password bench-password-0123456789 --rs-id bench-rs \
    --rs-secret bench-rs-secret-0123456789abcdef0123 "$@"
echo "server peak RSS: $(grep VmHWM /proc/$server/status | awk '{print $2, $3}')"
