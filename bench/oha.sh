# Sourced by bench/compare.sh: the shared scenarios whose request repeats
# unchanged (no rotation, no browser), measured by oha, a load generator no
# one here wrote, against both servers of the same run. oha_compare PORT
# PEER_PORT EPHEMERA_PID PEER_PID prints one row per scenario and server and
# the ratios. OHA_SECONDS (default 5) and OHA_CONCURRENCY (default 32).
oha_seconds=${OHA_SECONDS:-5}
oha_conns=${OHA_CONCURRENCY:-32}
oha_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM

cpu_ticks() { # PID: user + system time so far, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# oha_run PID EXPECTED_STATUS oha-arguments...: a 1 s warm-up, then the
# measured run on CPU 1. Prints "ok/s p50 p99 other cpu%": only answers with
# the expected status count; `other` is every other status or error (the
# requests cut off by the end of the run excepted).
oha_run() {
    local pid=$1 expect=$2
    shift 2
    taskset -c 1 oha --no-tui --output-format quiet -z 1s -c "$oha_conns" "$@" >/dev/null 2>&1 || true
    local t0 t1 json
    t0=$(cpu_ticks "$pid")
    json=$(taskset -c 1 oha --no-tui --output-format json -z "${oha_seconds}s" -c "$oha_conns" "$@")
    t1=$(cpu_ticks "$pid")
    jq -r --arg expect "$expect" --argjson ticks "$((t1 - t0))" --argjson hz "$(getconf CLK_TCK)" '
        (.statusCodeDistribution[$expect] // 0) as $ok
        | ([.statusCodeDistribution | to_entries[] | select(.key != $expect) | .value] | add // 0) as $bad
        | ([.errorDistribution | to_entries[] | select(.key != "aborted due to deadline") | .value] | add // 0) as $err
        | "\($ok / .summary.total | floor) \(.latencyPercentiles.p50 * 1000 * 100 | round / 100) \(.latencyPercentiles.p99 * 1000 * 100 | round / 100) \($bad + $err) \(100 * $ticks / $hz / .summary.total | round)"' <<<"$json"
}

# oha_server NAME BASE DISCOVERY_PATH PID: every scenario against one server;
# one line per scenario, "scenario name ok/s p50 p99 other cpu%".
oha_server() {
    local name=$1 base=$2 discovery=$3 pid=$4 doc token introspect par register access
    doc=$(curl -fs "$base$discovery")
    token=$(jq -r .token_endpoint <<<"$doc")
    introspect=$(jq -r .introspection_endpoint <<<"$doc")
    par=$(jq -r .pushed_authorization_request_endpoint <<<"$doc")
    register=$(jq -r .registration_endpoint <<<"$doc")
    access=$(curl -fs -u "bench-rs:$rs_secret" -d grant_type=client_credentials "$token" | jq -r .access_token)
    echo "discovery $name $(oha_run "$pid" 200 "$base$discovery")"
    echo "par-basic $name $(oha_run "$pid" 201 -m POST -a "bench-app:$app_secret" \
        -T application/x-www-form-urlencoded \
        -d "client_id=bench-app&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb&state=bench-state&scope=read&code_challenge=$oha_challenge&code_challenge_method=S256" \
        "$par")"
    echo "token $name $(oha_run "$pid" 200 -m POST -a "bench-rs:$rs_secret" \
        -T application/x-www-form-urlencoded -d grant_type=client_credentials "$token")"
    echo "introspect $name $(oha_run "$pid" 200 -m POST -a "bench-rs:$rs_secret" \
        -T application/x-www-form-urlencoded -d "token=$access" "$introspect")"
    echo "dcr $name $(oha_run "$pid" 201 -m POST -T application/json \
        -d '{"client_name":"Bench Agent","redirect_uris":["http://127.0.0.1:9999/cb"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}' \
        "$register")"
}

oha_compare() { # PORT PEER_PORT EPHEMERA_PID PEER_PID
    local rows
    echo
    echo "oha $(oha --version | awk '{print $2}'): $oha_conns connections, 1 s warm-up + $oha_seconds s measured per scenario, the same servers"
    rows=$(
        oha_server ephemera "http://127.0.0.1:$1" /.well-known/oauth-authorization-server "$3"
        oha_server peer "http://127.0.0.1:$2" /.well-known/openid-configuration "$4"
    )
    printf '%-11s %-9s %10s %8s %8s %7s %5s\n' scenario target "req/s" "p50 ms" "p99 ms" other cpu
    awk '{printf "%-11s %-9s %10s %8s %8s %7s %4s%%\n", $1, $2, $3, $4, $5, $6, $7}' <<<"$rows"
    echo
    echo "oha ratios (Ephemera / peer; per busy core: each one's req/s over its CPU share)"
    awk '
        $2 == "ephemera" { e[$1] = $3; ec[$1] = $7; order[++n] = $1 }
        $2 == "peer" { p[$1] = $3; pc[$1] = $7 }
        END {
            for (i = 1; i <= n; i++) {
                s = order[i]
                if (p[s] > 0 && pc[s] > 0 && ec[s] > 0)
                    printf "%-11s %6.1fx   per busy core %6.1fx\n", s, e[s] / p[s], (e[s] / ec[s]) / (p[s] / pc[s])
            }
        }' <<<"$rows"
}
