# cluster.sh - integration-test helpers: a TAP producer and a real host + runners on loopback
# in a temporary directory. Source it from tests/integration/tNNNN-*.t (bash).
#
#   hr_setup                      temp dir, config, free port; starts nothing
#   hr_start_host                 starts hakuriver.host, waits until it answers
#   hr_start_runner NAME [ARGS]   starts a runner with hostname NAME and its own state dir
#   hr_wait_node NAME STATUS      waits until /nodes shows NAME with STATUS
#   hr_submit ARGS...             hakuriver.task submit ARGS, prints the task id(s)
#   hr_wait_status ID STATUS...   waits until the task reaches one of the statuses
#   hr_api METHOD PATH [BODY]     curl with the API token; prints "<code>\n<body>"
#   hr_need_docker                makes a Docker engine available (scripts/docker-up.sh) or
#                                 skips the file; under CI=true a missing engine is a failure
#   hr_docker METHOD PATH [BODY]  curl to the Docker Engine API; prints "<code>\n<body>"
# Docker objects of a test: environments should be named "$HR_ENV_PREFIX-..."; teardown
# removes containers labelled with this test's shared_dir and images hakuriver/$HR_ENV_PREFIX-*.
# Everything is torn down by an EXIT trap.

set -u
HR_BIN=${HAKURIVER_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
export PATH="$HR_BIN:$PATH"
_tap_n=0
_tap_fail=0
_hr_pids=()

ok () { # ok COND_EXIT_STATUS DESCRIPTION
    _tap_n=$((_tap_n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $_tap_n - $2"; else
        echo "not ok $_tap_n - $2"; _tap_fail=$((_tap_fail + 1)); fi
}
# test_expect_success 'description' 'commands'
test_expect_success () {
    local out rc
    out=$(eval "$2" 2>&1); rc=$?
    ok $rc "$1"
    # on stderr too, so that prove shows why without -v
    [ $rc -eq 0 ] || printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 30 | tee /dev/stderr
    return 0
}
diag () { echo "# $*"; }
done_testing () { echo "1..$_tap_n"; [ "$_tap_fail" -eq 0 ]; }

# A port nobody listens on, below the kernel's ephemeral range (ip_local_port_range starts
# at 32768 by default): an ephemeral port of some client connection, or of a socket in
# TIME_WAIT, would make the daemon's bind fail. Not the one given as $1.
hr_free_port () {
    local p lo=20000 hi=32767
    read -r hi _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && hi=$((hi - 1))
    [ "$hi" -gt "$lo" ] || hi=32767
    while :; do
        p=$(( (RANDOM % (hi - lo + 1)) + lo ))
        [ "$p" = "${1:-}" ] && continue
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
    done
}

HR_DOCKER_SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
hr_docker () { # hr_docker METHOD PATH [BODY]
    local out code
    out=$(mktemp)
    code=$(curl -s -o "$out" -w '%{http_code}' --unix-socket "$HR_DOCKER_SOCK" -X "$1" \
           -H 'Content-Type: application/json' ${3:+--data "$3"} "http://docker$2")
    echo "$code"; cat "$out"; rm -f "$out"
}
hr_need_docker () {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    if ! "$root/scripts/docker-up.sh" >&2; then
        if [ "${CI:-}" = true ]; then echo "Bail out! no Docker engine (CI must run the Docker tests)"; exit 1; fi
        echo "1..0 # SKIP no Docker engine"; exit 0
    fi
    HR_DOCKER=1
}
_hr_docker_cleanup () {
    [ "${HR_DOCKER:-}" = 1 ] || return 0
    local ids
    ids=$(curl -s --unix-socket "$HR_DOCKER_SOCK" "http://docker/containers/json?all=1" |
          python3 -c 'import json,sys
d=sys.argv[1]
for c in json.load(sys.stdin):
    if (c.get("Labels") or {}).get("hakuriver.shared_dir","").startswith(d): print(c["Id"])' "$HR_DIR")
    for c in $ids; do curl -s -X DELETE --unix-socket "$HR_DOCKER_SOCK" "http://docker/containers/$c?force=1" >/dev/null; done
    ids=$(curl -s --unix-socket "$HR_DOCKER_SOCK" "http://docker/images/json" |
          python3 -c 'import json,sys
p="hakuriver/"+sys.argv[1]+"-"
for i in json.load(sys.stdin):
    if any(t.startswith(p) for t in (i.get("RepoTags") or [])): print(i["Id"])' "$HR_ENV_PREFIX")
    for c in $ids; do curl -s -X DELETE --unix-socket "$HR_DOCKER_SOCK" "http://docker/images/$c?force=1" >/dev/null; done
}

hr_setup () {
    HR_DIR=$(mktemp -d /tmp/hr-test.XXXXXX)
    HR_ENV_PREFIX=hrt$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    HR_PORT=$(hr_free_port)
    HR_PROXY_PORT=$(hr_free_port "$HR_PORT")
    HR_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    HR_JOIN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mkdir -p "$HR_DIR/shared" "$HR_DIR/local"
    chmod 755 "$HR_DIR"
    HR_CONF=$HR_DIR/config.toml
    cat > "$HR_CONF" <<CONF
[network]
host_bind_ip = "127.0.0.1"
host_port = $HR_PORT
host_ssh_proxy_port = $HR_PROXY_PORT
host_reachable_address = "127.0.0.1"
runner_address = "127.0.0.1"

[paths]
shared_dir = "$HR_DIR/shared"
local_temp_dir = "$HR_DIR/local"

[database]
db_file = "$HR_DIR/host.db"

[timing]
heartbeat_interval = ${HR_HEARTBEAT:-1}
heartbeat_timeout_factor = ${HR_TIMEOUT_FACTOR:-3}
cleanup_check_interval = 1
kill_grace_seconds = 2

[environment]
runner_user = "nobody"

[docker]
container_dir = "containers"
create_default_environment = false
${HR_DOCKER_CONF:-}

[auth]
api_token = "$HR_TOKEN"
join_token = "$HR_JOIN"
CONF
    export HAKURIVER_CONFIG=$HR_CONF
    trap hr_teardown EXIT
}

hr_teardown () {
    local rc=$? p f i alive
    for f in "$HR_DIR"/host.pid "$HR_DIR"/runner-*.pid; do
        [ -f "$f" ] && _hr_pids+=("$(cat "$f")")
    done
    for p in "${_hr_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    # a clean stop lets sanitizers and valgrind write their leak reports
    for i in $(seq 1 100); do
        alive=0
        for p in "${_hr_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${_hr_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    # task shims survive runner exits by design; end the ones this test started
    pkill -KILL -f "$HR_DIR/" 2>/dev/null   # only this test's processes: others may run
    local s c line dir
    for s in $(pgrep -x hr-shim); do
        grep -q "$HR_DIR" /proc/$s/environ 2>/dev/null || continue
        for c in $(pgrep -P "$s"); do   # the task: kill its whole cgroup, then remove it
            line=$(grep -E '^[0-9]+:(memory)?:' /proc/$c/cgroup 2>/dev/null | grep -v '^0::/$' | head -n1)
            case $line in
            *:memory:*) dir=/sys/fs/cgroup/memory${line##*:} ;;
            *) dir=/sys/fs/cgroup${line##*:} ;;
            esac
            case $dir in */hakuriver/task-*)
                kill -KILL $(cat "$dir/cgroup.procs" 2>/dev/null) 2>/dev/null
                for i in 1 2 3 4 5; do rmdir "$dir" 2>/dev/null && break; sleep 0.1; done ;;
            *) kill -KILL "$c" ;;
            esac
        done
        kill -KILL "$s"
    done
    _hr_docker_cleanup
    # a daemon's memory error or leak fails the test file
    local bad
    bad=$(grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ERROR SUMMARY: [1-9]|definitely lost: [1-9]" \
          "$HR_DIR"/*.log 2>/dev/null)
    if [ -n "$bad" ]; then
        for f in $bad; do
            echo "# memory error reported in $(basename "$f"):"
            grep -B2 -A25 -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|definitely lost in|Invalid (read|write)|uninitialised" "$f" | head -n 60 | sed 's/^/#   /'
        done
        rc=1
    fi
    if [ "${HR_KEEP:-}" = "" ]; then rm -rf "$HR_DIR"; else echo "# kept $HR_DIR"; fi
    exit $rc
}

# hr_daemon_prefix: runs the daemons under valgrind when HR_VALGRIND=1
hr_daemon_prefix () {
    if [ "${HR_VALGRIND:-}" = 1 ]; then
        echo valgrind --leak-check=full --errors-for-leak-kinds=definite \
             --show-leak-kinds=definite --child-silent-after-fork=yes \
             --log-file="$HR_DIR/valgrind-$1-%p.log"
    fi
}

hr_start_host () {
    $(hr_daemon_prefix host) hakuriver.host --config "$HR_CONF" >>"$HR_DIR/host.log" 2>&1 &
    HR_HOST_PID=$!
    disown "$HR_HOST_PID"   # no "Killed" job notices when a test kill -9s it
    _hr_pids+=("$HR_HOST_PID")
    echo "$HR_HOST_PID" > "$HR_DIR/host.pid"   # tests run in subshells: read it back from here
    local i
    for i in $(seq 1 400); do
        curl -s -o /dev/null "http://127.0.0.1:$HR_PORT/health" && return 0
        sleep 0.05
    done
    # on stderr too: prove shows it without -v, so a CI log says why
    { echo "# host did not start:"; sed 's/^/#   /' "$HR_DIR/host.log"; } | tee /dev/stderr
    return 1
}

hr_start_runner () {
    local name=$1; shift
    mkdir -p "$HR_DIR/state-$name"
    $(hr_daemon_prefix "runner-$name") hakuriver.runner --config "$HR_CONF" --hostname "$name" --state-dir "$HR_DIR/state-$name" \
        "$@" >>"$HR_DIR/runner-$name.log" 2>&1 &
    local pid=$!
    disown "$pid"
    _hr_pids+=("$pid")
    eval "HR_RUNNER_PID_${name//[^A-Za-z0-9]/_}=$pid"
    echo "$pid" > "$HR_DIR/runner-$name.pid"
}

hr_runner_pid () { cat "$HR_DIR/runner-$1.pid"; }
hr_host_pid () { cat "$HR_DIR/host.pid"; }

hr_api () { # METHOD PATH [BODY] -> prints HTTP code then body
    local m=$1 p=$2 body=${3:-}
    if [ -n "$body" ]; then
        curl -s -o "$HR_DIR/api.out" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $HR_TOKEN" \
            -H 'Content-Type: application/json' --data-binary "$body" "http://127.0.0.1:$HR_PORT$p"
    else
        curl -s -o "$HR_DIR/api.out" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $HR_TOKEN" \
            "http://127.0.0.1:$HR_PORT$p"
    fi
    echo; cat "$HR_DIR/api.out"; echo
}

hr_json () { # hr_json FIELD < json   (top-level string/number field)
    python3 -c 'import json,sys; v=json.load(sys.stdin); 
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print("" if v is None else v)' "$1"
}

hr_node_status () {
    hr_api GET /nodes | tail -n +2 | python3 -c 'import json,sys
for n in json.load(sys.stdin):
    if n["hostname"] == sys.argv[1]: print(n["status"])' "$1"
}

hr_wait_node () { # NAME STATUS [TIMEOUT_S]
    local i t=${3:-15}
    for i in $(seq 1 $((t * 20))); do
        [ "$(hr_node_status "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    echo "node $1 did not become $2 (is $(hr_node_status "$1"))"; return 1
}

hr_task_status () { hr_api GET "/status/$1" | tail -n +2 | hr_json status; }

hr_wait_status () { # ID STATUS [TIMEOUT_S]
    local i t=${3:-20} st
    for i in $(seq 1 $((t * 20))); do
        st=$(hr_task_status "$1")
        [ "$st" = "$2" ] && return 0
        sleep 0.05
    done
    echo "task $1 did not become $2 (is $st)"; hr_api GET "/status/$1"; return 1
}

hr_submit () { # prints the task ids, one per line
    hakuriver.task --json submit "$@" | python3 -c 'import json,sys
for i in json.load(sys.stdin)["task_ids"]: print(i)'
}
