#!/usr/bin/env bash
# t0300-queue.t - tasks that do not fit wait as queued and start in order; paused tasks keep
# their cores; kill and pause/resume
. "$(dirname "$0")/../lib/cluster.sh"
hr_setup
hr_start_host || exit 1
hr_start_runner n1
hr_wait_node n1 online
cores=$(hr_api GET /nodes | tail -n +2 | hr_json 0.total_cores)

test_expect_success 'filling the node makes the next task queued, not refused' '
    ids=$(for i in $(seq 1 $cores); do hr_submit --container NULL --cores 1 -- sleep 300; done) &&
    for i in $ids; do hr_wait_status $i running || exit 1; done &&
    q=$(hr_submit --container NULL --cores 1 -- echo queued-ran) &&
    [ "$(hr_task_status $q)" = queued ] && echo "$ids" > $HR_DIR/ids && echo $q > $HR_DIR/q'
test_expect_success 'a paused task keeps its cores: the queued task still waits' '
    first=$(head -n1 $HR_DIR/ids) &&
    hakuriver.client command $first pause && hr_wait_status $first paused &&
    sleep 0.5 && [ "$(hr_task_status $(cat $HR_DIR/q))" = queued ]'
cpu_ticks () { awk '{print $14+$15}' /proc/$1/stat; }
test_expect_success 'pause really stops CPU use: a busy loop gets no CPU while paused' '
    id=$(hr_submit --container NULL --cores 0 -- sh -c "while :; do :; done" busy-$HR_PORT) &&
    hr_wait_status $id running && sleep 0.3 && pid=$(pgrep -f "busy-$HR_PORT" | head -n1) &&
    a=$(cpu_ticks $pid); sleep 0.5; b=$(cpu_ticks $pid) && [ $b -gt $a ] &&
    hakuriver.client command $id pause && hr_wait_status $id paused &&
    a=$(cpu_ticks $pid); sleep 0.6; b=$(cpu_ticks $pid) && [ $b -eq $a ] &&
    hakuriver.client command $id resume && hr_wait_status $id running &&
    a=$(cpu_ticks $pid); sleep 0.5; b=$(cpu_ticks $pid) && [ $b -gt $a ] &&
    hakuriver.client kill $id && hr_wait_status $id killed'
test_expect_success 'resume brings it back to running' '
    first=$(head -n1 $HR_DIR/ids) && hakuriver.client command $first resume && hr_wait_status $first running'
test_expect_success 'pause of a task that is not running is refused with 400' '
    [ "$(hr_api POST /command/$(cat $HR_DIR/q)/pause | head -n1)" = 400 ]'
test_expect_success 'killing a running task frees its core and the queued task starts' '
    first=$(head -n1 $HR_DIR/ids) && hakuriver.client kill $first &&
    [ "$(hr_task_status $first)" = killed ] &&
    hr_wait_status $(cat $HR_DIR/q) completed && [ "$(hakuriver.task stdout $(cat $HR_DIR/q))" = queued-ran ]'
test_expect_success 'the killed task process is gone and its status stays killed' '
    sleep 0.5; [ "$(hr_task_status $(head -n1 $HR_DIR/ids))" = killed ]'
test_expect_success 'a second kill of a final task gives 409' '
    [ "$(hr_api POST /kill/$(head -n1 $HR_DIR/ids) | head -n1)" = 409 ]'
test_expect_success 'killing a queued task never runs it' '
    for i in $(sed 1d $HR_DIR/ids); do :; done &&
    q2=$(hr_submit --container NULL --cores $cores -- touch $HR_DIR/shared/shared_data/should-not-exist) &&
    [ "$(hr_task_status $q2)" = queued ] && hakuriver.client kill $q2 &&
    [ "$(hr_task_status $q2)" = killed ] && sleep 1 && [ ! -e $HR_DIR/shared/shared_data/should-not-exist ]'
test_expect_success 'queued tasks start in submission order; a small task may not jump a big one' '
    for i in $(sed 1d $HR_DIR/ids); do hakuriver.client kill $i >/dev/null 2>&1; done;
    blocker=$(hr_submit --container NULL --cores 1 -- sleep 6) && hr_wait_status $blocker running &&
    big=$(hr_submit --container NULL --cores $cores -- true) &&
    small=$(hr_submit --container NULL --cores 1 -- true) &&
    sleep 0.5 &&
    if [ "$cores" -gt 1 ]; then [ "$(hr_task_status $small)" = queued ]; fi &&
    hr_wait_status $big completed && hr_wait_status $small completed &&
    bs=$(hr_api GET /status/$big | tail -n +2 | hr_json started_at) &&
    ss=$(hr_api GET /status/$small | tail -n +2 | hr_json started_at) &&
    [[ "$bs" < "$ss" || "$bs" == "$ss" ]]'
test_expect_success '--cores 0 reserves nothing: it runs even when the node is full' '
    ids=$(for i in $(seq 1 $cores); do hr_submit --container NULL --cores 1 -- sleep 5; done) &&
    z=$(hr_submit --container NULL --cores 0 -- true) && hr_wait_status $z completed &&
    for i in $ids; do hakuriver.client kill $i >/dev/null; done'
test_expect_success 'memory over the limit is killed_oom, read from the kernel' '
    id=$(hr_submit --container NULL --memory 64M -- sh -c "dd if=/dev/zero of=/dev/null bs=300M count=1") &&
    hr_wait_status $id killed_oom'
test_expect_success 'exit code 137 without an OOM kill is failed, not killed_oom' '
    id=$(hr_submit --container NULL -- sh -c "kill -9 \$\$") && hr_wait_status $id failed'
done_testing
