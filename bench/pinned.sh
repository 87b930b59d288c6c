#!/usr/bin/env bash
# Ephemera alone on one core, the load generator on the other: starts a
# release `ephemera serve` pinned to CPU 0 on a fresh durable SQLite file
# (bench/lib.sh says how it is configured and seeded), runs ephemera-bench
# pinned to CPU 1 with the arguments given (e.g. --seconds 5 --concurrency
# 32), which reports the server's CPU use and memory. PRELOAD_GRANTS=N
# stores N live grants first; KEEP_LOG=FILE keeps the server's log. Build first:
#   cargo build --release -p ephemera-server -p ephemera-bench
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
dir=$(mktemp -d)
EPHEMERA_PID=
trap '[ -n "$EPHEMERA_PID" ] && kill "$EPHEMERA_PID" 2>/dev/null; [ -n "${KEEP_LOG:-}" ] && cp "$dir/ephemera.log" "$KEEP_LOG"; rm -rf "$dir"' EXIT
port=${PORT:-18080}
start_ephemera "$dir" "$port" 0
taskset -c 1 "$bin/ephemera-bench" --target "http://127.0.0.1:$port" --server-pid "$EPHEMERA_PID" \
    --password "$bench_password" --rs-secret "$rs_secret" --app-secret "$app_secret" "$@"
