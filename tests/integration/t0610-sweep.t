#!/usr/bin/env bash
# t0610-sweep.t - host-side sweeps: submit --sweep (one request, one batch), --max-running
# (respected, not blocking others, kept across a host restart), list/kill --batch, a 10,000
# task sweep, and bad sweeps
. "$(dirname "$0")/../lib/cluster.sh"
hr_setup
hr_start_host || exit 1
hr_start_runner n1
hr_wait_node n1 online

# sample.py BATCH|@FILE TIMEOUT: polls the batch until every task is final; prints the
# largest number seen at once in assigning/pending/running/paused and the number of samples.
# With @FILE it first waits for FILE to hold the batch id, so that it can be started (python
# takes a while to start here) before the submission. Rides out a host restart.
cat > "$HR_DIR/sample.py" <<'PY'
import json, os, sys, time, urllib.request
port, token, batch, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
end = time.time() + timeout
if batch.startswith("@"):
    while not (os.path.exists(batch[1:]) and open(batch[1:]).read().strip()):
        if time.time() > end:
            sys.exit("no batch id in " + batch[1:])
        time.sleep(0.02)
    batch = open(batch[1:]).read().strip()
url = "http://127.0.0.1:%s/tasks?batch_id=%s&limit=10000" % (port, batch)
held = ("assigning", "pending", "running", "paused")
final = ("completed", "failed", "killed", "killed_oom", "lost")
mx, samples = 0, 0
while time.time() < end:
    try:
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
        tasks = json.load(urllib.request.urlopen(req, timeout=5))
    except Exception:
        time.sleep(0.1)
        continue
    samples += 1
    mx = max(mx, sum(t["status"] in held for t in tasks))
    if tasks and all(t["status"] in final for t in tasks):
        print(mx, samples)
        sys.exit(0)
    time.sleep(0.05)
print(mx, samples, "timeout")
sys.exit(1)
PY
sample () { python3 "$HR_DIR/sample.py" "$HR_PORT" "$HR_TOKEN" "$@"; }
# sample_start NAME: a sampler in the background for the batch id written to NAME.batch later
sample_start () {
    rm -f "$HR_DIR/$1.batch" "$HR_DIR/$1.sample"
    sample "@$HR_DIR/$1.batch" 120 > "$HR_DIR/$1.sample" 2>&1 &
    echo $! > "$HR_DIR/$1.sampler"
}
sample_wait () { # NAME: waits for the sampler (not in a subshell: it is our child); its
    # "MAX SAMPLES" is then in NAME.sample. Fails if the sampler failed.
    wait "$(cat "$HR_DIR/$1.sampler")"
}
batch_count () { # BATCH [STATUSES]
    hr_api GET "/tasks?batch_id=$1&limit=10000${2:+&status=$2}" | tail -n +2 |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

sweep_of_100 () {
    local reply b ids n
    reply=$(hakuriver.task --json submit --sweep --container NULL --cores 0 -- \
        sh -c 'echo "$0 $1"' 'span:{1..50}' 'span:[a, "b,c"]') || return 1
    b=$(echo "$reply" | hr_json batch_id)
    n=$(echo "$reply" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["task_ids"]))')
    echo "batch $b, $n tasks"
    [ "$n" = 100 ] || return 1
    [ "$(grep -c "batch $b: sweep of 100 tasks submitted" "$HR_DIR/host.log")" = 1 ] || return 1
    echo "$reply" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["task_ids"]))' > "$HR_DIR/sweep100"
    echo $b > "$HR_DIR/sweep100.batch"
    [ "$(batch_count $b)" = 100 ] || return 1
    # every task of the batch carries it, and the arguments are the combinations in order
    hr_api GET "/tasks?batch_id=$b&limit=1000" | tail -n +2 | python3 -c '
import json, sys
tasks = sorted(json.load(sys.stdin), key=lambda t: int(t["task_id"]))
b = sys.argv[1]
assert all(t["batch_id"] == b for t in tasks), "batch ids"
got = [t["arguments"][2:] for t in tasks]
want = [[str(i), v] for i in range(1, 51) for v in ("a", "b,c")]
assert got == want, (got[:4], want[:4])
assert tasks[0]["arguments"][:2] == ["-c", "echo \"$0 $1\""]
' $b || return 1
    sample $b 120 || return 1
    local id
    id=$(sed -n 1p "$HR_DIR/sweep100"); [ "$(hakuriver.task stdout $id)" = "1 a" ] || return 1
    id=$(sed -n 2p "$HR_DIR/sweep100"); [ "$(hakuriver.task stdout $id)" = "1 b,c" ] || return 1
    id=$(sed -n 37p "$HR_DIR/sweep100"); [ "$(hakuriver.task stdout $id)" = "19 a" ] || return 1
    id=$(sed -n 100p "$HR_DIR/sweep100"); [ "$(hakuriver.task stdout $id)" = "50 b,c" ] || return 1
    [ "$(batch_count $b completed)" = 100 ]
}
test_expect_success 'a sweep of 100 tasks is one request, one batch, one task per combination' sweep_of_100

test_expect_success 'list --batch shows exactly that batch' '
    b=$(cat $HR_DIR/sweep100.batch) &&
    [ "$(hakuriver.task list --batch $b --all | tail -n +2 | wc -l)" = 100 ] &&
    hakuriver.task list --batch $b --limit 5 2>$HR_DIR/more | tail -n +2 | grep -c completed | grep -qx 5 &&
    grep -q "more tasks match" $HR_DIR/more &&
    [ "$(hakuriver.task --json list --batch $b --all | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")" = 100 ]'

test_expect_success 'the CLI prints a summary, not 100 IDs, for a large sweep' '
    out=$(hakuriver.task submit --sweep --container NULL --cores 0 -- true "span:{1..30}") &&
    echo "$out" && [ "$(echo "$out" | wc -l)" = 2 ] && echo "$out" | grep -q "^Submitted 30 tasks in batch [0-9]*$" &&
    b=$(echo "$out" | sed -n "s/^Submitted 30 tasks in batch //p") && sample $b 60 >/dev/null'

max_running_respected () {
    local reply b out
    sample_start mr
    reply=$(hakuriver.task --json submit --sweep --max-running 2 --container NULL --cores 0 -- \
        sleep 'span:[1,1,1,1,1,1,1,1]') || return 1
    b=$(echo "$reply" | hr_json batch_id)
    echo $b > "$HR_DIR/mr.batch"
    [ "$(hr_api GET /status/$(echo "$reply" | hr_json task_ids.0) | tail -n +2 | hr_json max_running)" = 2 ] || return 1
    sample_wait mr || { cat "$HR_DIR/mr.sample"; return 1; }
    out=$(cat "$HR_DIR/mr.sample")
    echo "--max-running 2: max at once $out samples" | tee "$HR_DIR/diag.mr"
    [ "${out%% *}" = 2 ] && [ "$(batch_count $b completed)" = 8 ]
}
test_expect_success '--max-running 2: never more than 2 of the batch at once, and 2 are reached' \
    max_running_respected
diag "$(cat "$HR_DIR/diag.mr" 2>/dev/null)"

throttle_does_not_block_others () {
    local reply b other t0
    reply=$(hakuriver.task --json submit --sweep --max-running 1 --container NULL --cores 1 -- \
        sleep 'span:[10,10,10,10,10]') || return 1
    b=$(echo "$reply" | hr_json batch_id)
    echo $b > "$HR_DIR/throttled.batch"
    hr_wait_status $(echo "$reply" | hr_json task_ids.0) running || return 1
    other=$(hr_submit --container NULL --cores 1 -- echo unrelated) || return 1
    hr_wait_status $other completed 10 || return 1
    [ "$(hakuriver.task stdout $other)" = unrelated ] || return 1
    echo "queued in the sweep meanwhile: $(batch_count $b queued)"
    [ "$(batch_count $b queued)" = 4 ]
}
test_expect_success 'the tasks a throttle holds back do not block a later unrelated task' \
    throttle_does_not_block_others

kill_batch () {
    local b out
    b=$(cat "$HR_DIR/throttled.batch")
    out=$(hakuriver.task --json kill --batch $b) || return 1
    echo "$out"
    [ "$(echo "$out" | hr_json killed)" = 5 ] && [ "$(echo "$out" | hr_json queued)" = 4 ] &&
        [ "$(echo "$out" | hr_json started)" = 1 ] || return 1
    sample $b 20 >/dev/null || return 1
    [ "$(batch_count $b killed)" = 5 ] || return 1
    # a second kill finds nothing left to kill; an unknown batch is 404
    out=$(hakuriver.task kill --batch $b) && echo "$out" | grep -q "Kill requested for 0 tasks" &&
        [ "$(hr_api POST /kill_batch/12345 | head -n1)" = 404 ] &&
        [ "$(hr_api POST /kill_batch/abc | head -n1)" = 400 ] &&
        [ "$(hr_api GET /kill_batch/$b | head -n1)" = 405 ]
}
test_expect_success 'kill --batch kills every unfinished task of the batch and reports the counts' kill_batch

sweep_10000 () {
    local t0 t1 reply b n
    t0=$(date +%s%N)
    reply=$(hakuriver.task --json submit --sweep --max-running 1 --container NULL --cores 0 -- \
        sleep 'span:{1..100}' 'span:{1..100}') || return 1
    t1=$(date +%s%N)
    b=$(echo "$reply" | hr_json batch_id)
    n=$(echo "$reply" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["task_ids"]))')
    echo "10,000-task sweep: $n tasks, $(( (t1 - t0) / 1000000 )) ms for the request" |
        tee "$HR_DIR/diag.10000"
    [ "$n" = 10000 ] && [ "$(batch_count $b)" = 10000 ] || return 1
    [ "$(grep -c "batch $b: sweep of 10000 tasks submitted" "$HR_DIR/host.log")" = 1 ] || return 1
    out=$(hakuriver.task --json kill --batch $b) || return 1
    [ "$(echo "$out" | hr_json killed)" -ge 9999 ] || return 1
    sample $b 30 >/dev/null && [ "$(batch_count $b queued,assigning,pending,running)" = 0 ]
}
test_expect_success 'a 10,000-task sweep is accepted in one request and killed by batch' sweep_10000
diag "$(cat "$HR_DIR/diag.10000" 2>/dev/null)"

# drain.py BATCH LIMIT TIMEOUT: polls only the batch's tasks that hold a node (small replies)
# until none is left unfinished; prints the largest number held at once and the samples.
cat > "$HR_DIR/drain.py" <<'PY'
import json, sys, time, urllib.request
port, token, batch, limit, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
def get(q):
    url = "http://127.0.0.1:%s/tasks?batch_id=%s&%s" % (port, batch, q)
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    return json.load(urllib.request.urlopen(req, timeout=10))
mx, samples, end = 0, 0, time.time() + timeout
while time.time() < end:
    held = get("status=assigning,pending,running,paused&limit=10000")
    samples += 1
    mx = max(mx, len(held))
    if not held and not get("status=queued&limit=1"):
        print(mx, samples)
        sys.exit(0 if mx <= limit else 1)
    time.sleep(0.02)
print(mx, samples, "timeout")
sys.exit(1)
PY
sweep_10000_drain () {
    local reply b out t0
    t0=$(date +%s)
    reply=$(hakuriver.task --json submit --sweep --max-running 4 --container NULL --cores 0 -- \
        true 'span:{1..100}' 'span:{1..100}') || return 1
    b=$(echo "$reply" | hr_json batch_id)
    out=$(python3 "$HR_DIR/drain.py" "$HR_PORT" "$HR_TOKEN" $b 4 900) || { echo "$out"; return 1; }
    echo "10,000-task sweep with --max-running 4 drained in $(( $(date +%s) - t0 )) s; at most $out samples" |
        tee "$HR_DIR/diag.drain"
    [ "${out%% *}" -le 4 ] && [ "${out%% *}" -ge 2 ] &&
        [ "$(batch_count $b completed)" = 10000 ]
}
test_expect_success 'a 10,000-task sweep drains completely with its throttle respected' sweep_10000_drain
diag "$(cat "$HR_DIR/diag.drain" 2>/dev/null)"

bad_sweep () { # EXPECTED_MESSAGE ARGS...
    local want=$1 out rc; shift
    out=$(hakuriver.task submit --sweep --container NULL -- "$@" 2>&1); rc=$?
    echo "$out"
    [ $rc = 1 ] && echo "$out" | grep -qF -- "$want" && echo "$out" | grep -q "HTTP 422"
}
bad_sweeps () {
    bad_sweep 'argument 2 `span:{1..x}`: range end `x` is not a 64-bit integer at position 10' \
        echo ok 'span:{1..x}' || return 1
    bad_sweep 'argument 1 `span:[a,]`: empty item (write "" for an empty string) at position 9' echo 'span:[a,]' || return 1
    bad_sweep 'argument 1 `span:[a`: unterminated list' echo 'span:[a' || return 1
    bad_sweep 'none of the 2 arguments is a span' echo a b || return 1
    bad_sweep 'argument 2 `span:[]` is empty' echo 'span:{1..2}' 'span:[]' || return 1
    bad_sweep '101000 combinations, more than the limit of 100000' echo 'span:{1..1000}' 'span:{1..101}' || return 1
    [ "$(hr_api POST /submit '{"command":"true","container_name":"NULL","max_running":0}' | head -n1)" = 422 ] &&
    [ "$(hr_api POST /submit '{"command":"true","container_name":"NULL","sweep":"yes"}' | head -n1)" = 422 ] &&
    # nothing was created by any of them: the newest task is the same
    [ "$(newest)" = "$(cat $HR_DIR/newest.before)" ]
}
newest () { hr_api GET "/tasks?limit=1&task_type=all" | tail -n +2 | hr_json 0.task_id; }
test_expect_success 'bad sweeps are refused (422, exit 1) naming the argument; nothing is created' '
    newest > $HR_DIR/newest.before && bad_sweeps'

test_expect_success 'without --sweep a span argument is passed literally' '
    id=$(hr_submit --container NULL --cores 0 -- echo "span:{1..3}") && hr_wait_status $id completed &&
    [ "$(hakuriver.task stdout $id)" = "span:{1..3}" ]'

throttle_survives_restart () {
    local reply b out
    sample_start rs
    reply=$(hakuriver.task --json submit --sweep --max-running 1 --container NULL --cores 0 -- \
        sleep 'span:[2,2,2,2]') || return 1
    b=$(echo "$reply" | hr_json batch_id)
    echo $b > "$HR_DIR/rs.batch"
    sleep 1
    echo "before the kill: $(batch_count $b running) running"
    kill -9 $(hr_host_pid) && sleep 0.3 && hr_start_host || return 1
    sample_wait rs || { cat "$HR_DIR/rs.sample"; return 1; }
    out=$(cat "$HR_DIR/rs.sample")
    echo "max at once across the restart, samples: $out"
    [ "${out%% *}" = 1 ] && [ "$(batch_count $b completed)" = 4 ] &&
        [ "$(hr_api GET /status/$(echo "$reply" | hr_json task_ids.3) | tail -n +2 | hr_json max_running)" = 1 ]
}
test_expect_success 'the throttle survives kill -9 of the host and a restart' throttle_survives_restart

done_testing
