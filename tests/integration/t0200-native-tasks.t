#!/usr/bin/env bash
# t0200-native-tasks.t - command tasks run natively: output, env, cwd, user, exit codes, --wait
. "$(dirname "$0")/../lib/cluster.sh"
hr_setup
hr_start_host || exit 1
hr_start_runner n1
hr_wait_node n1 online

test_expect_success 'a task runs and its stdout reaches task_outputs/<id>.out' '
    id=$(hr_submit --container NULL --target n1 -- echo "hello world") &&
    hr_wait_status $id completed &&
    [ "$(hakuriver.task stdout $id)" = "hello world" ] &&
    [ -f $HR_DIR/shared/task_outputs/$id.out ]'
test_expect_success 'stderr is captured separately' '
    id=$(hr_submit --container NULL -- sh -c "echo out; echo err >&2") &&
    hr_wait_status $id completed &&
    [ "$(hakuriver.task stderr $id)" = "err" ] && [ "$(hakuriver.task stdout $id)" = "out" ]'
test_expect_success 'no shell interprets the command: metacharacters reach the program verbatim' '
    id=$(hr_submit --container NULL -- echo "a;b" "\$(id)" "*" ) &&
    hr_wait_status $id completed &&
    [ "$(hakuriver.task stdout $id)" = "a;b \$(id) *" ]'
test_expect_success 'task env, HAKURIVER_* variables and the working directory' '
    id=$(hr_submit --container NULL --env FOO=bar --env X=1 -- sh -c "echo \$FOO \$X \$HAKURIVER_TASK_ID; echo \$HAKURIVER_SHARED_DIR; echo \$HAKURIVER_LOCAL_TEMP_DIR; pwd") &&
    hr_wait_status $id completed &&
    out=$(hakuriver.task stdout $id) &&
    [ "$(echo "$out" | sed -n 1p)" = "bar 1 $id" ] &&
    [ "$(echo "$out" | sed -n 2p)" = "$HR_DIR/shared" ] &&
    [ "$(echo "$out" | sed -n 3p)" = "$HR_DIR/local" ] &&
    [ "$(echo "$out" | sed -n 4p)" = "$HR_DIR/shared/shared_data" ]'
test_expect_success 'tasks run as [environment] runner_user, not root' '
    id=$(hr_submit --container NULL -- id -u) && hr_wait_status $id completed &&
    [ "$(hakuriver.task stdout $id)" = "$(id -u nobody)" ]'
test_expect_success 'a non-zero exit is failed with the exit code' '
    id=$(hr_submit --container NULL -- sh -c "exit 3") && hr_wait_status $id failed &&
    [ "$(hr_api GET /status/$id | tail -n +2 | hr_json exit_code)" = 3 ]'
test_expect_success 'a missing program fails with a clear message' '
    id=$(hr_submit --container NULL -- /no/such/program) && hr_wait_status $id failed &&
    hr_api GET /status/$id | tail -n +2 | hr_json error_message | grep -qi "no such file"'
test_expect_success 'the status object has the 0.3 keys, a string id and the node' '
    id=$(hr_submit --container NULL -- true) && hr_wait_status $id completed &&
    hr_api GET /status/$id | tail -n +2 | python3 -c "import json,sys
t=json.load(sys.stdin)
keys=list(t)[:20]
want=[\"task_id\",\"batch_id\",\"command\",\"arguments\",\"env_vars\",\"required_cores\",\"required_gpus\",\"required_memory_bytes\",\"status\",\"assigned_node\",\"target_numa_node_id\",\"stdout_path\",\"stderr_path\",\"exit_code\",\"error_message\",\"submitted_at\",\"started_at\",\"completed_at\",\"systemd_unit_name\",\"assignment_suspicion_count\"]
assert keys==want, keys
assert isinstance(t[\"task_id\"], str) and t[\"assigned_node\"]==\"n1\" and t[\"exit_code\"]==0
assert int(t[\"task_id\"]) >> 22 > 1700000000000"'
test_expect_success '--wait exits 0 when the task completed' '
    hakuriver.task submit --container NULL --wait --poll-interval 0.2 -- true'
test_expect_success '--wait exits non-zero when the task did not complete' '
    ! hakuriver.task submit --container NULL --wait --poll-interval 0.2 -- false'
test_expect_success 'repeated --target creates one task per target in one batch' '
    out=$(hakuriver.task --json submit --container NULL --target n1 --target n1:0 -- true) &&
    echo "$out" | python3 -c "import json,sys; r=json.load(sys.stdin); assert len(r[\"task_ids\"])==2 and r[\"batch_id\"]==r[\"task_ids\"][0]"'
test_expect_success 'list shows tasks newest first and pages with before=' '
    p1=$(hr_api GET "/tasks?limit=2" | tail -n +2) &&
    last=$(echo "$p1" | hr_json 1.task_id) &&
    p2=$(hr_api GET "/tasks?limit=2&before=$last" | tail -n +2) &&
    first2=$(echo "$p2" | hr_json 0.task_id) && [ "$first2" -lt "$last" ] &&
    hakuriver.task list | head -n 3 | grep -q TASK'
test_expect_success 'nodes shows the runner with cores and NUMA topology' '
    hakuriver.client nodes | grep -q n1 &&
    hr_api GET /nodes | tail -n +2 | python3 -c "import json,sys; n=json.load(sys.stdin)[0]; assert n[\"status\"]==\"online\" and n[\"total_cores\"]>=1 and \"0\" in n[\"numa_topology\"]"'
test_expect_success 'health reports samples for the node' '
    sleep 1.2; hakuriver.client health n1 >/dev/null &&
    hr_api GET "/health?hostname=n1" | tail -n +2 | python3 -c "import json,sys; h=json.load(sys.stdin); assert h[\"nodes\"] and h[\"nodes\"][-1][0][\"hostname\"]==\"n1\""'
test_expect_success 'a NUMA target binds the task to that node (HAKURIVER_TARGET_NUMA_NODE, cpus)' '
    id=$(hr_submit --container NULL --target n1:0 -- sh -c "echo \$HAKURIVER_TARGET_NUMA_NODE; grep Cpus_allowed_list /proc/self/status") &&
    hr_wait_status $id completed && hakuriver.task stdout $id | head -n 1 | grep -qx 0 &&
    hakuriver.task stdout $id | grep -q "$(cat /sys/devices/system/node/node0/cpulist)"'
cat > "$HR_DIR/shared/limits.sh" <<'SH'
# prints the CPU quota, memory limit and swap limit of the cgroups this process is in
while IFS=: read -r _ c p; do
    case $c in
    cpu|cpu,cpuacct) echo "cpu $(cat /sys/fs/cgroup/$c$p/cpu.cfs_quota_us)" ;;
    memory) echo "mem $(cat /sys/fs/cgroup/memory$p/memory.limit_in_bytes)"
            echo "swap $(cat /sys/fs/cgroup/memory$p/memory.memsw.limit_in_bytes 2>/dev/null)" ;;
    "") if [ -f /sys/fs/cgroup$p/cpu.max ]; then
            echo "cpu $(cut -d" " -f1 /sys/fs/cgroup$p/cpu.max)"
            echo "mem $(cat /sys/fs/cgroup$p/memory.max)"
            echo "swap+mem $(cat /sys/fs/cgroup$p/memory.swap.max)"
        fi ;;
    esac
done < /proc/self/cgroup
SH
test_expect_success 'the cgroup has CPU quota = --cores and memory limit = --memory without swap' '
    id=$(hr_submit --container NULL --cores 1 --memory 64M -- sh "$HR_DIR/shared/limits.sh") &&
    hr_wait_status $id completed && out=$(hakuriver.task stdout $id) && echo "$out" &&
    grep -qx "cpu 100000" <<<"$out" && grep -qx "mem 64000000" <<<"$out" &&
    { grep -qx "swap 64000000" <<<"$out" || grep -qx "swap+mem 0" <<<"$out"; }'
test_expect_success 'a NUMA target binds memory too (numactl --show: policy bind, membind 0)' '
    id=$(hr_submit --container NULL --target n1:0 -- numactl --show) &&
    hr_wait_status $id completed && hakuriver.task stdout $id | grep -q "^policy: bind" &&
    hakuriver.task stdout $id | grep -q "^membind: 0 *$"'
test_expect_success 'output files that cannot be created fail the task with a clear message' '
    mv $HR_DIR/shared/task_outputs $HR_DIR/shared/task_outputs.away &&
    touch $HR_DIR/shared/task_outputs &&
    id=$(hr_submit --container NULL -- true) && hr_wait_status $id failed; rc=$?
    rm -f $HR_DIR/shared/task_outputs && mv $HR_DIR/shared/task_outputs.away $HR_DIR/shared/task_outputs &&
    [ $rc = 0 ] && hr_api GET /status/$id | tail -n +2 | hr_json error_message | tee /dev/stderr |
        grep -q "cannot open the output files.*Not a directory"'
test_expect_success 'processes a task leaves behind are killed and its cgroup removed' '
    id=$(hr_submit --container NULL -- sh -c "sleep 300 >/dev/null 2>&1 & echo \$!") &&
    hr_wait_status $id completed && bg=$(hakuriver.task stdout $id) && [ -n "$bg" ] &&
    for i in $(seq 1 50); do kill -0 $bg 2>/dev/null || break; sleep 0.1; done &&
    ! kill -0 $bg 2>/dev/null &&
    ! find /sys/fs/cgroup -maxdepth 6 -type d -name "task-$id-*" 2>/dev/null | grep -q .'
done_testing
