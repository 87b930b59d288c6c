#!/usr/bin/env bash
# Ephemera beside node-oidc-provider, in the same run: both servers pinned to
# CPU 0 (one at a time is under load; the other waits idle), the load
# generator on CPU 1. Every scenario both can run runs against Ephemera and
# then against the peer, with the same clients, authentication, token
# format and DPoP use, and the tool prints Ephemera/peer ratios. Arguments
# go to ephemera-bench (e.g. --seconds 5 --concurrency 32 --scenario flow).
# PRELOAD_GRANTS=N stores N live grants in Ephemera first. Then, when oha is
# installed (`cargo install oha --locked`), the scenarios whose request
# repeats unchanged run again against both servers with oha (bench/oha.sh),
# so each ratio comes from two load generators; OHA=0 skips that. Build first:
#   cargo build --release -p ephemera-server -p ephemera-bench
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. bench/oha.sh
dir=$(mktemp -d)
EPHEMERA_PID= PEER_PID=
trap 'for p in $EPHEMERA_PID $PEER_PID; do kill "$p" 2>/dev/null; done; rm -rf "$dir"' EXIT
port=${PORT:-18080}
peer_port=${PEER_PORT:-18090}
start_ephemera "$dir" "$port" 0
start_peer "$dir" "$peer_port" 0
echo "peer: oidc-provider $(node -p "require('./bench/peer/node_modules/oidc-provider/package.json').version") on Node.js $(node --version)"
taskset -c 1 "$bin/ephemera-bench" --target "http://127.0.0.1:$port" --server-pid "$EPHEMERA_PID" \
    --peer-target "http://127.0.0.1:$peer_port" --peer-pid "$PEER_PID" \
    --password "$bench_password" --rs-secret "$rs_secret" --app-secret "$app_secret" "$@"
if [ "${OHA:-1}" = 0 ]; then
    :
elif command -v oha >/dev/null; then
    oha_compare "$port" "$peer_port" "$EPHEMERA_PID" "$PEER_PID"
else
    echo "oha is not installed (cargo install oha --locked): the ratios above are ephemera-bench's only"
fi
