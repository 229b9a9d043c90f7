#!/usr/bin/env bash
# t0500-docker-tasks.t - Docker tasks against the real engine: environment tarball sync,
# what a task sees inside its container, limits, OOM, kill, pause/resume, newer tarballs,
# one load for concurrent tasks, corrupt tarballs, --image, runner restart re-adoption
. "$(dirname "$0")/../lib/cluster.sh"
hr_need_docker
HR_DOCKER_CONF='pull_timeout = 15'
hr_setup
hr_start_host || exit 1
hr_start_runner n1
hr_wait_node n1 online
ENV=$HR_ENV_PREFIX-env
TARS=$HR_DIR/shared/containers
mkdir -p "$TARS"
BASE=hakuriver-test/busybox:latest
enc () { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
image_id () { hr_docker GET "/images/$(enc "$1")/json" | tail -n +2 | hr_json Id; }
# save_tar IMAGE_REF ENVNAME TS: writes $TARS/ENVNAME-TS.tar holding IMAGE_REF tagged
# hakuriver/<envname>:base, then puts that tag back where it was (the runner must load it)
save_tar () {
    local low prev; low=$(echo "$2" | tr A-Z a-z)
    prev=$(image_id "hakuriver/$low:base")
    hr_docker POST "/images/$(enc "$1")/tag?repo=hakuriver/$low&tag=base" >/dev/null &&
    curl -sf --unix-socket "$HR_DOCKER_SOCK" -o "$TARS/.$2.partial" \
        "http://docker/images/$(enc "hakuriver/$low:base")/get" &&
    mv "$TARS/.$2.partial" "$TARS/$2-$3.tar" &&
    if [ -n "$prev" ]; then   # the runner's local image stays what it was
        hr_docker POST "/images/$prev/tag?repo=hakuriver/$low&tag=base" >/dev/null
    else
        hr_docker DELETE "/images/$(enc "hakuriver/$low:base")?noprune=1" >/dev/null
    fi
}
# commit_version VERSION: an image from BASE with /version holding VERSION; prints its id
commit_version () {
    local c
    c=$(hr_docker POST /containers/create "{\"Image\":\"$BASE\",\"Cmd\":[\"sh\",\"-c\",\"echo $1 > /version\"],\"Labels\":{\"hakuriver.shared_dir\":\"$HR_DIR/shared\"}}" | tail -n +2 | hr_json Id) &&
    hr_docker POST "/containers/$c/start" >/dev/null &&
    hr_docker POST "/containers/$c/wait" >/dev/null &&
    hr_docker POST "/commit?container=$c&repo=hakuriver/$HR_ENV_PREFIX-build&tag=$1" | tail -n +2 | hr_json Id &&
    hr_docker DELETE "/containers/$c" >/dev/null
}
untag_build () { hr_docker DELETE "/images/$(enc "hakuriver/$HR_ENV_PREFIX-build:$1")?noprune=1" >/dev/null; }
loads () { grep -c "loading $TARS/$1-" "$HR_DIR/runner-n1.log"; }
now=$(date +%s)
save_tar $BASE $ENV $((now - 1000))

test_expect_success 'a task in an environment sees /shared, /local_temp, its env and HAKURIVER_ vars' '
    echo hello-shared > $HR_DIR/shared/shared_data/in.txt &&
    id=$(hr_submit --container $ENV --env FOO=bar -- sh -c "pwd; cat in.txt; echo \$FOO \$HAKURIVER_TASK_ID \$HAKURIVER_SHARED_DIR \$HAKURIVER_LOCAL_TEMP_DIR; touch /local_temp/x-\$HAKURIVER_TASK_ID /shared/out-\$HAKURIVER_TASK_ID") &&
    hr_wait_status $id completed 60 && out=$(hakuriver.task stdout $id) && echo "$out" &&
    [ "$out" = "$(printf "/shared\nhello-shared\nbar $id /shared /local_temp")" ] &&
    [ -e $HR_DIR/local/x-$id ] && [ -e $HR_DIR/shared/shared_data/out-$id ]'
test_expect_success 'the tarball was loaded once, as hakuriver/<env>:base, and the container removed' '
    [ "$(loads $ENV)" = 1 ] && [ -n "$(image_id hakuriver/$ENV:base)" ] &&
    [ "$(hr_docker GET "/containers/json?all=1&filters=$(enc "{\"label\":[\"hakuriver.shared_dir=$HR_DIR/shared\",\"hakuriver.task_id\"]}")" | tail -n +2)" = "[]" ]'
test_expect_success 'the next task does not load it again' '
    id=$(hr_submit --container $ENV -- true) && hr_wait_status $id completed 30 && [ "$(loads $ENV)" = 1 ]'
test_expect_success 'cores and memory limits are set on the container (read from inside)' '
    id=$(hr_submit --container $ENV --cores 1 --memory 64M -- sh -c "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us") &&
    hr_wait_status $id completed 30 && out=$(hakuriver.task stdout $id | tr "\n" " ") && echo "$out" &&
    case "$out" in "64000000 100000 100000 "|"64000000 100000 100000 "*) ;; *) exit 1;; esac'
test_expect_success 'a HOST:NUMA target binds the container to the node (cpuset read from inside)' '
    want=$(cat /sys/devices/system/node/node0/cpulist) &&
    id=$(hr_submit --container $ENV --target n1:0 -- sh -c "cat /sys/fs/cgroup/cpuset.cpus.effective 2>/dev/null || cat /sys/fs/cgroup/cpuset/cpuset.cpus; echo \$HAKURIVER_TARGET_NUMA_NODE") &&
    hr_wait_status $id completed 30 && out=$(hakuriver.task stdout $id | tr "\n" " ") && echo "$out" &&
    [ "$out" = "$want 0 " ]'
test_expect_success 'exit codes and stderr come through; a failing command is failed' '
    id=$(hr_submit --container $ENV -- sh -c "echo oops >&2; exit 7") && hr_wait_status $id failed 30 &&
    [ "$(hr_api GET /status/$id | tail -n +2 | hr_json exit_code)" = 7 ] &&
    [ "$(hakuriver.task stderr $id)" = oops ]'
test_expect_success 'a command missing from the image fails with the engine reason' '
    id=$(hr_submit --container $ENV -- /no/such/thing) && hr_wait_status $id failed 30 &&
    hr_api GET /status/$id | tail -n +2 | hr_json error_message | grep -i "no such file\|not found"'
test_expect_success 'memory over the limit ends as killed_oom (State.OOMKilled)' '
    id=$(hr_submit --container $ENV --memory 32M -- tail /dev/zero) &&
    hr_wait_status $id killed_oom 60'
test_expect_success 'stdout reaches the log file while the task runs; kill ends it as killed' '
    id=$(hr_submit --container $ENV -- sh -c "echo early; sleep 60") && hr_wait_status $id running 30 &&
    for i in $(seq 1 100); do [ "$(hakuriver.task stdout $id)" = early ] && break; sleep 0.1; done &&
    [ "$(hakuriver.task stdout $id)" = early ] &&
    hakuriver.client kill $id && hr_wait_status $id killed 30 &&
    for i in $(seq 1 50); do [ "$(hr_docker GET /containers/hakuriver-task-$id/json | head -n1)" = 404 ] && break; sleep 0.1; done &&
    [ "$(hr_docker GET /containers/hakuriver-task-$id/json | head -n1)" = 404 ]'
test_expect_success 'pause freezes the container and resume thaws it' '
    id=$(hr_submit --container $ENV -- sleep 60) && hr_wait_status $id running 30 &&
    for i in $(seq 1 50); do [ "$(hr_docker GET /containers/hakuriver-task-$id/json | tail -n +2 | hr_json State.Running)" = True ] && break; sleep 0.1; done &&
    hakuriver.client command $id pause && hr_wait_status $id paused &&
    [ "$(hr_docker GET /containers/hakuriver-task-$id/json | tail -n +2 | hr_json State.Paused)" = True ] &&
    hakuriver.client command $id resume && hr_wait_status $id running &&
    [ "$(hr_docker GET /containers/hakuriver-task-$id/json | tail -n +2 | hr_json State.Paused)" = False ] &&
    hakuriver.client kill $id && hr_wait_status $id killed 30'
test_expect_success 'a newer tarball replaces the image on the next task' '
    v2=$(commit_version v2) && echo $v2 > $HR_DIR/v2 && save_tar $v2 $ENV $(($(date +%s) + 1)) && untag_build v2 &&
    id=$(hr_submit --container $ENV -- cat /version) && hr_wait_status $id completed 60 &&
    [ "$(hakuriver.task stdout $id)" = v2 ] && [ "$(loads $ENV)" = 2 ] &&
    [ "$(image_id hakuriver/$ENV:base)" = "$v2" ]'
test_expect_success 'two tasks needing the same new image load it once' '
    v3=$(commit_version v3) && save_tar $v3 $ENV $(($(date +%s) + 2)) && untag_build v3 &&
    a=$(hr_submit --container $ENV --cores 0 -- cat /version) &&
    b=$(hr_submit --container $ENV --cores 0 -- cat /version) &&
    hr_wait_status $a completed 60 && hr_wait_status $b completed 60 &&
    [ "$(hakuriver.task stdout $a)" = v3 ] && [ "$(hakuriver.task stdout $b)" = v3 ] &&
    [ "$(loads $ENV)" = 3 ]'
test_expect_success 'the image a newer tarball replaced is pruned' '
    [ "$(hr_docker GET /images/$(cat $HR_DIR/v2)/json | head -n1)" = 404 ]'
test_expect_success 'a corrupt tarball gives a clear failure' '
    head -c 10000 /dev/urandom > $TARS/$HR_ENV_PREFIX-bad-$now.tar &&
    id=$(hr_submit --container $HR_ENV_PREFIX-bad -- true) && hr_wait_status $id failed 60 &&
    msg=$(hr_api GET /status/$id | tail -n +2 | hr_json error_message) && echo "$msg" &&
    echo "$msg" | grep -q "cannot load image from $TARS/$HR_ENV_PREFIX-bad-$now.tar"'
test_expect_success 'an unknown environment is refused at submit, naming the ones that exist' '
    out=$(hakuriver.task submit --container nosuch-env -- true 2>&1); rc=$?; echo "$out" &&
    [ $rc = 1 ] && echo "$out" | grep -q "nosuch-env" && echo "$out" | grep -q "$ENV"'
test_expect_success '--image runs a local image directly' '
    id=$(hr_submit --image $BASE -- sh -c "echo direct") && hr_wait_status $id completed 30 &&
    [ "$(hakuriver.task stdout $id)" = direct ]'
test_expect_success '--image of an image that cannot be pulled fails with the reason' '
    id=$(hr_submit --image hakuriver-test/does-not-exist:1 -- true) && hr_wait_status $id failed 60 &&
    hr_api GET /status/$id | tail -n +2 | hr_json error_message | grep -q "cannot be pulled"'
test_expect_success '--mount adds a bind mount; relative paths and bad options are refused' '
    mkdir -p $HR_DIR/extra && echo extra-data > $HR_DIR/extra/f &&
    id=$(hr_submit --container $ENV --mount $HR_DIR/extra:/extra:ro -- sh -c "cat /extra/f; touch /extra/g 2>/dev/null || echo ro") &&
    hr_wait_status $id completed 30 && [ "$(hakuriver.task stdout $id)" = "$(printf "extra-data\nro")" ] &&
    ! hakuriver.task submit --container $ENV --mount rel:/x -- true &&
    ! hakuriver.task submit --container $ENV --mount /a:/b:rx -- true'
test_expect_success '--privileged is refused unless the config allows it' '
    out=$(hakuriver.task submit --container $ENV --privileged -- true 2>&1); echo "$out" &&
    echo "$out" | grep -q allow_privileged'
test_expect_success 'runner restart: a running container is re-adopted and its end reported' '
    id=$(hr_submit --container $ENV -- sh -c "echo before; sleep 4; echo after") && hr_wait_status $id running 30 &&
    for i in $(seq 1 100); do [ "$(hakuriver.task stdout $id)" = before ] && break; sleep 0.1; done &&
    kill -9 $(hr_runner_pid n1) && sleep 0.5 && hr_start_runner n1 &&
    hr_wait_status $id completed 30 && [ "$(hakuriver.task stdout $id)" = "$(printf "before\nafter")" ] &&
    grep -q "task $id.1: adopted" $HR_DIR/runner-n1.log'
test_expect_success 'runner restart with the shim gone too: the container is followed again' '
    id=$(hr_submit --container $ENV -- sh -c "echo one; sleep 4; echo two") && hr_wait_status $id running 30 &&
    for i in $(seq 1 100); do [ "$(hakuriver.task stdout $id)" = one ] && break; sleep 0.1; done &&
    shim=$(sqlite3 $HR_DIR/state-n1/runner-state.db "select shim_pid from tasks where task_id=$id") &&
    kill -9 $(hr_runner_pid n1) $shim && sleep 0.5 && hr_start_runner n1 &&
    hr_wait_status $id completed 30 && [ "$(hakuriver.task stdout $id)" = "$(printf "one\ntwo")" ] &&
    grep -q "following container hakuriver-task-$id again" $HR_DIR/runner-n1.log'
test_expect_success 'a task that ended while the runner was down is reported' '
    id=$(hr_submit --container $ENV -- sh -c "sleep 1; exit 3") && hr_wait_status $id running 30 &&
    kill -9 $(hr_runner_pid n1) && sleep 3 && hr_start_runner n1 &&
    hr_wait_status $id failed 30 && [ "$(hr_api GET /status/$id | tail -n +2 | hr_json exit_code)" = 3 ]'
test_expect_success 'a restarted runner removes task containers of its node that it does not supervise' '
    nid=$(hr_api GET /nodes | tail -n +2 | hr_json 0.node_id) &&
    hr_docker POST /containers/create?name=hakuriver-task-42 "{\"Image\":\"$BASE\",\"Cmd\":[\"sleep\",\"60\"],\"Labels\":{\"hakuriver.task_id\":\"42\",\"hakuriver.attempt\":\"1\",\"hakuriver.node_id\":\"$nid\",\"hakuriver.shared_dir\":\"$HR_DIR/shared\"}}" | head -n1 | grep -q 201 &&
    kill -9 $(hr_runner_pid n1) && sleep 0.3 && hr_start_runner n1 && hr_wait_node n1 online &&
    for i in $(seq 1 50); do [ "$(hr_docker GET /containers/hakuriver-task-42/json | head -n1)" = 404 ] && break; sleep 0.1; done &&
    [ "$(hr_docker GET /containers/hakuriver-task-42/json | head -n1)" = 404 ]'
test_expect_success 'no task container is left behind' '
    [ "$(hr_docker GET "/containers/json?all=1&filters=$(enc "{\"label\":[\"hakuriver.task_id\",\"hakuriver.shared_dir=$HR_DIR/shared\"]}")" | tail -n +2)" = "[]" ]'
done_testing
