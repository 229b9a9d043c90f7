# cluster.sh - sourced by the benchmark scripts: a host + one runner (hostname bench1) from
# $BUILD in a temporary directory $DIR with its own config, free port and tokens (runner_user
# "nobody", heartbeat 1 s), the stamp probe in $DIR/bin/hr-stamp, an EXIT trap that stops
# everything, and helpers: start_host, start_runner, api, kv, rss_kb, step, drain.
# Needs HERE, BUILD and LOAD (the hr-load binary) set by the caller.

# ---- cluster ---------------------------------------------------------------------------
free_port () {
    local p
    while :; do
        p=$(( (RANDOM % 12768) + 20000 ))   # below the ephemeral range (32768-)
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
    done
}

# The cluster's files (shared dir, state, databases) live on a file system of their own: a
# fresh ext4 image with a journal, loop-mounted, like the ext4 of a production machine. This
# VM's root ext4 has no journal, and creating a file there skips every inode deleted in the
# last minutes, one inode-table lookup at a time: on it, each run pays for what earlier runs
# (and tests) deleted, and the same code measured 2.1 s or 3.6-4.1 s of makespan, 1.06 or
# 1.3-1.6 daemon CPU-s depending on that history. Caveat of the image: the loop device's
# worker thread, not the daemons, does their writes to the disk, so daemon CPU reads a
# little lower than on a real disk (up to about 0.1 s per 1000 tasks against /tmp here).
# BENCH_FS=tmp (or BENCH_TMP=DIR) uses DIR (default /tmp) instead.
BENCH_FS_IMG= BENCH_FS_MNT=
if [ "${BENCH_FS:-loop}" = loop ] && [ -z "${BENCH_TMP:-}" ]; then
    BENCH_FS_IMG=$(mktemp /var/tmp/hr-bench-fs.XXXXXX) && BENCH_FS_MNT=$(mktemp -d /tmp/hr-bench-mnt.XXXXXX) \
        && truncate -s 4G "$BENCH_FS_IMG" && mkfs.ext4 -q -F "$BENCH_FS_IMG" \
        && mount -o loop "$BENCH_FS_IMG" "$BENCH_FS_MNT" || {
            echo "bench: WARNING: no loop-mounted ext4 for the cluster (mkfs.ext4/mount -o loop" \
                 "failed); using ${BENCH_TMP:-/tmp}" >&2
            rmdir "$BENCH_FS_MNT" 2>/dev/null; rm -f "$BENCH_FS_IMG"; BENCH_FS_IMG= BENCH_FS_MNT=
        }
fi
DIR=$(mktemp -d "${BENCH_FS_MNT:-${BENCH_TMP:-/tmp}}/hr-bench.XXXXXX")
chmod 755 "$DIR"
PORT=$(free_port)
PROXY_PORT=$(free_port); while [ "$PROXY_PORT" = "$PORT" ]; do PROXY_PORT=$(free_port); done
URL=http://127.0.0.1:$PORT
TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
JOIN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
CONF=$DIR/config.toml
HOST_PID= RUNNER_PID=
mkdir -p "$DIR/shared/lat" "$DIR/local" "$DIR/state" "$DIR/bin"
chmod 1777 "$DIR/shared/lat"
# the probe lives in the temp dir: the task user (nobody) must be able to run it
cc -O2 -std=gnu11 -Wall -static "$HERE/stamp.c" -o "$DIR/bin/hr-stamp" 2>/dev/null \
    || cc -O2 -std=gnu11 -Wall "$HERE/stamp.c" -o "$DIR/bin/hr-stamp" || exit 1
chmod 755 "$DIR/bin" "$DIR/bin/hr-stamp"
cat > "$CONF" <<CONF
[network]
host_bind_ip = "127.0.0.1"
host_port = $PORT
host_ssh_proxy_port = $PROXY_PORT
host_reachable_address = "127.0.0.1"
runner_address = "127.0.0.1"

[paths]
shared_dir = "$DIR/shared"
local_temp_dir = "$DIR/local"

[database]
db_file = "$DIR/host.db"

[timing]
heartbeat_interval = 1
heartbeat_timeout_factor = 3
cleanup_check_interval = 1
kill_grace_seconds = 2

[environment]
runner_user = "nobody"

[docker]
create_default_environment = false

[auth]
api_token = "$TOKEN"
join_token = "$JOIN"
CONF

stop_pid () { # PID: TERM, wait up to 10 s, then KILL
    local p=$1 i
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
}

teardown () {
    local rc=$? s
    stop_pid "$RUNNER_PID"
    stop_pid "$HOST_PID"
    # task shims outlive the runner by design: end the ones started under this temp dir
    for s in $(pgrep -x hr-shim); do
        grep -qF "$DIR" "/proc/$s/environ" 2>/dev/null && kill -KILL "$s" 2>/dev/null
    done
    if [ -n "${BENCH_LOGS:-}" ]; then
        mkdir -p "$BENCH_LOGS" && cp "$DIR"/*.log "$BENCH_LOGS"/ 2>/dev/null \
            && echo "logs copied to $BENCH_LOGS" >&2
    fi
    if [ -n "${BENCH_KEEP:-}" ]; then
        echo "kept $DIR${BENCH_FS_IMG:+ (mounted from $BENCH_FS_IMG)}"
    else
        rm -rf "$DIR"
        if [ -n "$BENCH_FS_MNT" ]; then
            umount "$BENCH_FS_MNT" 2>/dev/null || umount -l "$BENCH_FS_MNT"
            rmdir "$BENCH_FS_MNT"; rm -f "$BENCH_FS_IMG"
        fi
    fi
    exit $rc
}
trap teardown EXIT
trap 'exit 1' INT TERM

start_host () {
    "$BUILD/hakuriver.host" --config "$CONF" >>"$DIR/host.log" 2>&1 &
    HOST_PID=$!
    local i
    for i in $(seq 1 600); do
        curl -s -o /dev/null "$URL/health" && return 0
        kill -0 "$HOST_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench: host did not start:" >&2; tail -n 20 "$DIR/host.log" >&2; return 1
}

start_runner () {
    "$BUILD/hakuriver.runner" --config "$CONF" --hostname bench1 --state-dir "$DIR/state" \
        >>"$DIR/runner.log" 2>&1 &
    RUNNER_PID=$!
    local i
    for i in $(seq 1 300); do
        curl -s -H "Authorization: Bearer $TOKEN" "$URL/nodes" 2>/dev/null \
            | grep -q '"hostname": *"bench1".*"status": *"online"' && return 0
        sleep 0.05
    done
    echo "bench: runner did not come online:" >&2; tail -n 20 "$DIR/runner.log" >&2; return 1
}

api () { curl -s -H "Authorization: Bearer $TOKEN" "$URL$1"; }
kv () { # kv KEY LINE -> value of KEY=... in LINE
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}
rss_kb () { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
BROKEN=0
step () { # step NAME CMD...: runs a hr-load subcommand, keeps its key=value line in OUT
    local rc
    echo "== $1" >&2
    OUT=$("${@:2}"); rc=$?
    printf '   %s\n' "$OUT" >&2
    if [ $rc -ne 0 ]; then echo "bench: $1 failed (exit $rc)" >&2; BROKEN=1; fi
    return $rc
}
drain () {
    local out
    out=$("$LOAD" drain --url "$URL" --token "$TOKEN" -d "${1:-300}")
    printf '   drain: %s\n' "$out" >&2
    [ "$(kv drained "$out")" = 1 ] || { echo "bench: tasks did not drain" >&2; BROKEN=1; }
}

