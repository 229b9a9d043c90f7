#!/usr/bin/env bash
# t0400-durability.t - kill -9 of the host and of runners loses no acknowledged work
. "$(dirname "$0")/../lib/cluster.sh"
hr_setup
hr_start_host || exit 1
hr_start_runner n1
hr_start_runner n2
hr_wait_node n1 online && hr_wait_node n2 online

submit_loop () { # submits trivial tasks with curl until killed; records acknowledged ids
    local body='{"command":"true","container_name":"NULL","required_cores":0}'
    while :; do
        out=$(curl -s -X POST -H "Authorization: Bearer $HR_TOKEN" -d "$body" \
              "http://127.0.0.1:$HR_PORT/submit") || continue
        id=$(echo "$out" | sed -n 's/.*"task_ids":\["\([0-9]*\)".*/\1/p')
        [ -n "$id" ] && echo "$id" >> "$HR_DIR/acked"
    done
}

test_expect_success 'kill -9 of the host under submit load loses no acknowledged task' '
    submit_loop & lp=$! ;
    for i in $(seq 1 200); do [ "$(cat $HR_DIR/acked 2>/dev/null | wc -l)" -ge 40 ] && break; sleep 0.05; done;
    kill -9 $(hr_host_pid) ; sleep 0.2; kill $lp; wait $lp 2>/dev/null;
    n=$(wc -l < $HR_DIR/acked) && [ "$n" -gt 20 ] && echo "acked $n" &&
    hr_start_host && missing=0 &&
    for id in $(cat $HR_DIR/acked); do
        [ "$(hr_api GET /status/$id | head -n1)" = 200 ] || missing=$((missing+1)); done &&
    echo "missing $missing" && [ $missing = 0 ]'
test_expect_success 'after the restart every acknowledged task completes' '
    hr_wait_node n1 online && for id in $(tail -n 20 $HR_DIR/acked); do hr_wait_status $id completed 30 || exit 1; done &&
    left=$(hr_api GET "/tasks?status=queued,assigning,pending,running&limit=10000" | tail -n +2 | python3 -c "import json,sys; print(len(json.load(sys.stdin)))") &&
    for i in $(seq 1 100); do [ "$left" = 0 ] && break; sleep 0.2;
        left=$(hr_api GET "/tasks?status=queued,assigning,pending,running&limit=10000" | tail -n +2 | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"); done;
    [ "$left" = 0 ]'
test_expect_success 'a completion that happens while the host is down is delivered after it returns' '
    id=$(hr_submit --container NULL --target n1 -- sh -c "sleep 1; echo late") && hr_wait_status $id running &&
    kill -9 $(hr_host_pid) && sleep 2 && hr_start_host && hr_wait_status $id completed 20 &&
    [ "$(hakuriver.task stdout $id)" = late ]'
test_expect_success 'runner restart re-adopts a running task and reports its end' '
    id=$(hr_submit --container NULL --target n1 -- sh -c "sleep 3; echo adopted") && hr_wait_status $id running &&
    kill -9 $(hr_runner_pid n1) && sleep 0.5 && hr_start_runner n1 &&
    hr_wait_status $id completed 20 && [ "$(hakuriver.task stdout $id)" = adopted ] &&
    [ "$(hr_api GET /status/$id | tail -n +2 | hr_json attempt)" = 1 ]'
test_expect_success 'a task that ends while its runner is down is reported after the restart' '
    id=$(hr_submit --container NULL --target n1 -- sh -c "sleep 2; exit 4") && hr_wait_status $id running &&
    kill -9 $(hr_runner_pid n1) && sleep 3 && hr_start_runner n1 &&
    hr_wait_status $id failed 20 && [ "$(hr_api GET /status/$id | tail -n +2 | hr_json exit_code)" = 4 ]'
test_expect_success 'kill -9 of a runner: the node goes offline and its task becomes lost' '
    id=$(hr_submit --container NULL --target n2 -- sleep 60) && hr_wait_status $id running &&
    kill -9 $(hr_runner_pid n2) && hr_wait_node n2 offline 15 && hr_wait_status $id lost 5 &&
    hr_api GET /status/$id | tail -n +2 | hr_json error_message | grep -q "went offline"'
test_expect_success 'an offline node refuses new targeted work' '
    hr_api POST /submit "{\"command\":\"true\",\"container_name\":\"NULL\",\"targets\":[\"n2\"]}" | grep -q "Node status is offline"'
test_expect_success 'the node coming back revives the lost task (still running there)' '
    id=$(hr_api GET "/tasks?status=lost&node=n2&limit=1" | tail -n +2 | hr_json 0.task_id) &&
    hr_start_runner n2 && hr_wait_node n2 online && hr_wait_status $id running 10 &&
    hakuriver.client kill $id && hr_wait_status $id killed'
test_expect_success 'with --retries a task on a lost node is requeued elsewhere as attempt 2' '
    id=$(hr_submit --container NULL --retries 1 --cores 1 -- sleep 60) && hr_wait_status $id running &&
    node=$(hr_api GET /status/$id | tail -n +2 | hr_json assigned_node) &&
    other=$([ $node = n1 ] && echo n2 || echo n1) &&
    kill -9 $(hr_runner_pid $node) && hr_wait_node $node offline 15 &&
    hr_wait_status $id running 15 &&
    [ "$(hr_api GET /status/$id | tail -n +2 | hr_json assigned_node)" = $other ] &&
    [ "$(hr_api GET /status/$id | tail -n +2 | hr_json attempt)" = 2 ] &&
    echo "$id $node" > $HR_DIR/requeued'
test_expect_success 'the old attempt is fenced: when its node returns it is killed, the task stays on attempt 2' '
    read id node < $HR_DIR/requeued && hr_start_runner $node && hr_wait_node $node online &&
    sleep 2 && [ "$(hr_api GET /status/$id | tail -n +2 | hr_json attempt)" = 2 ] &&
    [ "$(hr_task_status $id)" = running ] && hakuriver.client kill $id && hr_wait_status $id killed'
done_testing
