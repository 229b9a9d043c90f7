#!/bin/bash
# run.sh - issue #2 benchmarks against a real host + runner on loopback; prints a PASS/MISS table.
#
#   bench/run.sh [BUILD_DIR]        (`make bench` runs it with the absolute build dir)
#
# Starts hakuriver.host and one hakuriver.runner from BUILD_DIR in a temporary directory with
# its own config, free port and tokens (runner_user "nobody", heartbeat 1 s, native tasks),
# then runs, in this order (each on an idle cluster):
#   3. submit->start latency   sequential submits of a probe that stamps its start time
#   2. makespan                1000 trivial tasks from submit to the last completion
#   4. daemon CPU              host+runner+spawner utime+stime over the makespan window
#   1. submit throughput       8 keep-alive clients for BENCH_SUBMIT_S seconds
#   5. host RSS                100k finished tasks in the store (rows added with sqlite3
#                              while the host is stopped), /tasks page latency at that size
# Exit status: 0 when every benchmark ran (MISS included), 1 when a run broke.
# Knobs (environment): BENCH_SUBMIT_S (5), BENCH_SUBMIT_MAX (10000), BENCH_TASKS (1000),
# BENCH_LAT_N (200), BENCH_LAT_SPACING_MS (20), BENCH_STORE_ROWS (100000), BENCH_TASK_CORES
# (1: required_cores of every benchmark task; 0 = tasks that hold no cores, so the runner's
# cores do not limit concurrency), BENCH_KEEP=1 keeps the temporary directory, BENCH_LOGS=DIR
# copies host.log and runner.log there at the end.

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$HERE/../build}
BUILD=$(cd "$BUILD" && pwd) || { echo "run.sh: no build dir $1" >&2; exit 1; }
SUBMIT_S=${BENCH_SUBMIT_S:-5}
SUBMIT_MAX=${BENCH_SUBMIT_MAX:-10000}
TASKS=${BENCH_TASKS:-1000}
LAT_N=${BENCH_LAT_N:-200}
LAT_SPACING=${BENCH_LAT_SPACING_MS:-20}
STORE_ROWS=${BENCH_STORE_ROWS:-100000}
CORES=${BENCH_TASK_CORES:-1}

for b in hakuriver.host hakuriver.runner; do
    [ -x "$BUILD/$b" ] || { echo "run.sh: $BUILD/$b missing (run make first)" >&2; exit 1; }
done
command -v sqlite3 >/dev/null || { echo "run.sh: the sqlite3 shell is needed" >&2; exit 1; }

# ---- build the load generator and the probe -------------------------------------------
cc -O2 -std=gnu11 -Wall -D_GNU_SOURCE "$HERE/load.c" -lcurl -ljansson -lpthread \
    -o "$BUILD/hr-load" || exit 1
LOAD=$BUILD/hr-load

. "$HERE/cluster.sh"

start_host || exit 1
start_runner || exit 1
sleep 1.5     # let registration settle and a heartbeat or two pass
echo "cluster: host pid $HOST_PID, runner pid $RUNNER_PID, port $PORT, dir $DIR" >&2

# ---- 3. submit -> start latency -------------------------------------------------------
step latency "$LOAD" latency --url "$URL" --token "$TOKEN" -n "$LAT_N" -s "$LAT_SPACING" -C "$CORES" \
    -D "$DIR/shared/lat" -H "$DIR/bin/hr-stamp"
LAT=$OUT
drain 60

# ---- 2 + 4. makespan and daemon CPU ---------------------------------------------------
RSS_IDLE=$(rss_kb "$HOST_PID")
# The runner's shim spawner (runner/spawner.h) is a daemon process too; the shims it forks
# (one per task, each living as long as its task) are not counted, as the tasks are not.
SPAWNER_PID=$(pgrep -P "$RUNNER_PID" -x hr-spawner | head -1)
step makespan "$LOAD" makespan --url "$URL" --token "$TOKEN" -c 8 -n "$TASKS" -C "$CORES" \
    -p "$HOST_PID,$RUNNER_PID${SPAWNER_PID:+,$SPAWNER_PID}"
MK=$OUT
drain 120

# ---- 1. submit throughput -------------------------------------------------------------
step submit "$LOAD" submit --url "$URL" --token "$TOKEN" -c 8 -C "$CORES" -d "$SUBMIT_S" \
    -n "$SUBMIT_MAX"
SUB=$OUT
drain 600
RSS_AFTER_RUNS=$(rss_kb "$HOST_PID")

# ---- 5. host RSS with STORE_ROWS finished tasks ---------------------------------------
echo "== store: filling to $STORE_ROWS finished tasks" >&2
stop_pid "$HOST_PID"
HOST_PID=
HAVE=$(sqlite3 "$DIR/host.db" "SELECT count(*) FROM task")
ADD=$((STORE_ROWS - HAVE))
if [ "$ADD" -gt 0 ]; then
    # copies of a real finished task, with ids (and times) 1 ms apart before the oldest
    # task so far: the snowflake layout (ms << 22) and the id order stay realistic; the
    # columns are named, so those added by later schema versions keep their defaults
    sqlite3 -cmd '.timeout 5000' "$DIR/host.db" <<SQL || BROKEN=1
BEGIN;
CREATE TEMP TABLE tpl AS SELECT * FROM task WHERE status = 'completed'
    ORDER BY task_id DESC LIMIT 1;
CREATE TEMP TABLE lo AS SELECT min(task_id) AS id FROM task;
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $ADD)
INSERT INTO task (task_id, task_type, batch_id, command, arguments, env_vars, required_cores,
    required_gpus, required_memory_bytes, status, assigned_node_id, target,
    target_numa_node_id, container_name, stdout_path, stderr_path, exit_code, error_message,
    submitted_at, started_at, completed_at, attempt, retries_left, assignment_suspicion_count)
SELECT
    lo.id - (k.i << 22), tpl.task_type, lo.id - (k.i << 22), tpl.command, tpl.arguments,
    tpl.env_vars, tpl.required_cores, tpl.required_gpus, tpl.required_memory_bytes,
    tpl.status, tpl.assigned_node_id, tpl.target, tpl.target_numa_node_id,
    tpl.container_name,
    replace(tpl.stdout_path, tpl.task_id, lo.id - (k.i << 22)),
    replace(tpl.stderr_path, tpl.task_id, lo.id - (k.i << 22)),
    tpl.exit_code, tpl.error_message, tpl.submitted_at - k.i, tpl.started_at - k.i,
    tpl.completed_at - k.i, tpl.attempt, tpl.retries_left, tpl.assignment_suspicion_count
FROM k, tpl, lo;
COMMIT;
SQL
fi
ROWS=$(sqlite3 "$DIR/host.db" "SELECT count(*) FROM task WHERE status NOT IN
    ('queued', 'assigning', 'pending', 'running', 'paused')")
DBSIZE=$(du -k "$DIR/host.db" | cut -f1)
start_host || exit 1
RSS_START=$(rss_kb "$HOST_PID")
step pages "$LOAD" pages --url "$URL" --token "$TOKEN" -n 50
PG=$OUT
RSS_PAGES=$(rss_kb "$HOST_PID")
HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$HOST_PID/status")

# ---- summary ---------------------------------------------------------------------------
row () { # row NAME TARGET MEASURED OK(1/0/"")
    local verdict=MISS
    [ "$4" = 1 ] && verdict=PASS
    [ -z "$4" ] && verdict=ERROR
    printf '%-34s %-18s %-22s %s\n' "$1" "$2" "$3" "$verdict"
}
le () { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") exit 1; print (a <= b) ? 1 : 0 }'; }
ge () { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") exit 1; print (a >= b) ? 1 : 0 }'; }

RATE=$(kv rate "$SUB"); SUB_ERR=$(kv errors "$SUB")
MKS=$(kv makespan_s "$MK"); MK_DONE=$(kv completed "$MK")
P50=$(kv p50_ms "$LAT"); P95=$(kv p95_ms "$LAT")
CPU=$(kv cpu_per_1000 "$MK")
RSS_MB=$(awk -v k="$RSS_PAGES" 'BEGIN { if (k != "") printf "%.1f", k / 1024 }')
PAGE=$(kv page_p50_ms "$PG")

echo
echo "HakuRiver-C benchmarks ($(date '+%F %T'), $(nproc) cores, $(uname -r)," \
     "tasks with required_cores=$CORES)"
printf '%-34s %-18s %-22s %s\n' BENCHMARK TARGET MEASURED RESULT
row "1. submit throughput (8 clients)" ">= 2500/s" "${RATE:-?}/s (${SUB_ERR:-?} err)" \
    "$([ "${SUB_ERR:-1}" = 0 ] && ge "$RATE" 2500)"
row "2. makespan, $TASKS trivial tasks" "<= 2.5 s" "${MKS:-?} s ($MK_DONE done)" \
    "$([ "$MK_DONE" = "$TASKS" ] && le "$MKS" 2.5)"
row "3. submit->start p50" "<= 10 ms" "${P50:-?} ms" "$(le "$P50" 10)"
row "3. submit->start p95" "<= 25 ms" "${P95:-?} ms" "$(le "$P95" 25)"
row "4. daemon CPU per 1000 tasks" "<= 1 CPU-s" "${CPU:-?} s" "$(le "$CPU" 1)"
row "5. host RSS, ${ROWS:-?} tasks stored" "<= 50 MB" "${RSS_MB:-?} MB" \
    "$([ "${ROWS:-0}" -ge "$STORE_ROWS" ] && le "$RSS_MB" 50)"
echo
echo "details:"
echo "  latency:  $LAT"
echo "  makespan: $MK"
echo "  daemon CPU over the makespan window (host,runner,spawner): $(kv cpu_by_pid_s "$MK") s"
echo "  not counted above: the task shims and the tasks (reaped children of runner and spawner):" \
     "$(kv children_cpu_s "$MK") s"
echo "  submit:   $SUB"
echo "  pages:    $PG"
echo "  host RSS kB: idle $RSS_IDLE, after runs $RSS_AFTER_RUNS, restart with $ROWS rows" \
     "$RSS_START, after pages $RSS_PAGES, peak $HWM; db ${DBSIZE} kB"
n_err=$(grep -c -i -E "error|warn" "$DIR/host.log" "$DIR/runner.log" | tr '\n' ' ')
echo "  log lines with error/warn: $n_err"
grep -h -i -E "error|warn" "$DIR/host.log" "$DIR/runner.log" | head -n 5 | sed 's/^/    /' 
[ "$BROKEN" = 0 ] || { echo "run.sh: some benchmark did not run properly (see above)" >&2; exit 1; }
exit 0
