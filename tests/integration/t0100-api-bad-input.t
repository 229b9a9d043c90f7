#!/usr/bin/env bash
# t0100-api-bad-input.t - every kind of bad input gets a clear error and changes nothing
. "$(dirname "$0")/../lib/cluster.sh"
hr_setup
hr_start_host || exit 1
hr_start_runner n1
hr_wait_node n1 online

code () { hr_api "$@" | head -n 1; }
body () { hr_api "$@" | tail -n +2; }
count_tasks () { hr_api GET '/tasks?task_type=all&limit=10000' | tail -n +2 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

test_expect_success 'a request without a token is refused with 401 naming the token' '
    c=$(curl -s -o $HR_DIR/o -w "%{http_code}" http://127.0.0.1:$HR_PORT/tasks) &&
    [ "$c" = 401 ] && grep -q "Authorization" $HR_DIR/o'
test_expect_success 'a wrong token is refused with 401' '
    c=$(curl -s -o $HR_DIR/o -w "%{http_code}" -H "Authorization: Bearer nope" http://127.0.0.1:$HR_PORT/nodes) &&
    [ "$c" = 401 ] && grep -q "Invalid token" $HR_DIR/o'
test_expect_success 'the runner join token does not open the user API' '
    c=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $HR_JOIN" http://127.0.0.1:$HR_PORT/tasks) &&
    [ "$c" = 401 ]'
test_expect_success 'the user token does not open the runner channel' '
    c=$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Authorization: Bearer $HR_TOKEN" -d "{}" http://127.0.0.1:$HR_PORT/register) &&
    [ "$c" = 401 ]'
test_expect_success 'malformed JSON gives 422 with the parser position' '
    [ "$(code POST /submit "{\"command\": ")" = 422 ] && body POST /submit "{\"command\": " | grep -q "Malformed JSON"'
test_expect_success 'a non-object body gives 422' '[ "$(code POST /submit "[1,2]")" = 422 ]'
test_expect_success 'an unknown field gives 422 naming it' '
    body POST /submit "{\"command\":\"true\",\"bogus\":1}" | grep -q "Unknown field .bogus."'
test_expect_success 'a wrong type gives 422 naming the field' '
    body POST /submit "{\"command\":\"true\",\"required_cores\":\"two\"}" | grep -q "required_cores"'
test_expect_success 'negative cores give 422' '
    [ "$(code POST /submit "{\"command\":\"true\",\"required_cores\":-1}")" = 422 ]'
test_expect_success 'negative memory gives 422' '
    [ "$(code POST /submit "{\"command\":\"true\",\"required_memory_bytes\":-5}")" = 422 ]'
test_expect_success 'a missing command gives 422' '[ "$(code POST /submit "{\"arguments\":[]}")" = 422 ]'
test_expect_success 'target host:abc gives 422 with the 0.3 message' '
    body POST /submit "{\"command\":\"true\",\"container_name\":\"NULL\",\"targets\":[\"n1:abc\"]}" | grep -q "Invalid target format"'
test_expect_success 'target host:99 (no such NUMA node) fails that target with the valid ids' '
    [ "$(code POST /submit "{\"command\":\"true\",\"container_name\":\"NULL\",\"targets\":[\"n1:99\"]}")" = 503 ] &&
    body POST /submit "{\"command\":\"true\",\"container_name\":\"NULL\",\"targets\":[\"n1:99\"]}" | grep -q "Invalid NUMA ID for node (Valid: \[0"'
test_expect_success 'an unknown host fails with Node not registered' '
    body POST /submit "{\"command\":\"true\",\"container_name\":\"NULL\",\"targets\":[\"ghost\"]}" | grep -q "Node not registered"'
test_expect_success 'more cores than the node has fails that target' '
    body POST /submit "{\"command\":\"true\",\"container_name\":\"NULL\",\"targets\":[\"n1\"],\"required_cores\":999}" | grep -q "only"'
test_expect_success 'a partial batch reports the failed target and creates the rest' '
    out=$(body POST /submit "{\"command\":\"true\",\"container_name\":\"NULL\",\"targets\":[\"n1\",\"ghost\"]}") &&
    echo "$out" | grep -q failed_targets && echo "$out" | grep -q ghost'
test_expect_success 'an unknown container environment gives 422 naming it' '
    out=$(body POST /submit "{\"command\":\"true\",\"container_name\":\"no-such-env\"}") &&
    echo "$out" | grep -q "Container environment .no-such-env. does not exist" &&
    [ "$(code POST /submit "{\"command\":\"true\"}")" = 422 ]'
test_expect_success 'bad Docker options give 422 or 403' '
    [ "$(code POST /submit "{\"command\":\"true\",\"image\":\"bad image\"}")" = 422 ] &&
    [ "$(code POST /submit "{\"command\":\"true\",\"image\":\"busybox\",\"container_name\":\"NULL\"}")" = 422 ] &&
    [ "$(code POST /submit "{\"command\":\"true\",\"image\":\"busybox\",\"additional_mounts\":[\"rel:/x\"]}")" = 422 ] &&
    [ "$(code POST /submit "{\"command\":\"true\",\"image\":\"busybox\",\"additional_mounts\":[\"/a:/b:zz\"]}")" = 422 ] &&
    [ "$(code POST /submit "{\"command\":\"true\",\"container_name\":\"NULL\",\"privileged\":true}")" = 422 ] &&
    [ "$(code POST /submit "{\"command\":\"true\",\"image\":\"busybox\",\"privileged\":true}")" = 403 ]'
n0=$(count_tasks)
test_expect_success 'a non-numeric task id gives 400' '[ "$(code GET /status/abc)" = 400 ]'
test_expect_success 'a huge task id gives 400' '[ "$(code GET /status/99999999999999999999999)" = 400 ]'
test_expect_success 'an unknown task id gives 404' '[ "$(code GET /status/12345)" = 404 ]'
test_expect_success 'kill of an unknown task gives 404' '[ "$(code POST /kill/12345)" = 404 ]'
test_expect_success '/command/ID/explode gives 400' '
    [ "$(code POST /command/12345/explode)" = 400 ] && body POST /command/12345/explode | grep -q explode'
test_expect_success 'stdout of an unknown task gives 404' '[ "$(code GET /task/12345/stdout)" = 404 ]'
test_expect_success 'an unknown path gives 404' '[ "$(code GET /nope)" = 404 ]'
test_expect_success 'a body over 4 MiB gives 413' '
    head -c 5000000 /dev/zero | tr "\0" "a" > $HR_DIR/big &&
    c=$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Authorization: Bearer $HR_TOKEN" --data-binary @$HR_DIR/big http://127.0.0.1:$HR_PORT/submit) &&
    [ "$c" = 413 ]'
test_expect_success 'request headers over the limit are refused' '
    big=$(head -c 40000 /dev/zero | tr "\0" "a") &&
    c=$(curl -s -o /dev/null -w "%{http_code}" -H "X-Big: $big" -H "Authorization: Bearer $HR_TOKEN" http://127.0.0.1:$HR_PORT/nodes) &&
    [ "$c" = 431 ] || [ "$c" = 413 ]'
test_expect_success 'none of the bad requests created a task' '[ "$(count_tasks)" = "$n0" ]'
test_expect_success 'bad /tasks filters give 400' '
    [ "$(code GET "/tasks?status=bogus")" = 400 ] && [ "$(code GET "/tasks?limit=0")" = 400 ] &&
    [ "$(code GET "/tasks?before=x")" = 400 ]'
test_expect_success 'health of an unknown host gives 404' '[ "$(code GET "/health?hostname=ghost")" = 404 ]'

# the CLI side of bad input: usage errors exit 2 and send nothing
test_expect_success 'CLI: --memory 12X is a usage error (exit 2)' '
    hakuriver.task submit --memory 12X -- true; [ $? = 2 ]'
test_expect_success 'CLI: negative --cores is a usage error' '
    hakuriver.task submit --cores -3 -- true; [ $? = 2 ]'
test_expect_success 'CLI: --target host:abc is a usage error' '
    hakuriver.task submit --target n1:abc -- true; [ $? = 2 ]'
test_expect_success 'CLI: a non-numeric id is a usage error' '
    hakuriver.client status abc; [ $? = 2 ]'
test_expect_success 'CLI: an unknown id exits 1 with the host message' '
    hakuriver.client status 12345 2>$HR_DIR/err; [ $? = 1 ] && grep -qi "not found" $HR_DIR/err'
test_expect_success 'CLI: a wrong token exits 1 and says how to set the token' '
    HAKURIVER_TOKEN=wrong hakuriver.client nodes 2>$HR_DIR/err; [ $? = 1 ] && grep -qi token $HR_DIR/err'
test_expect_success 'CLI: an unreachable host exits 1 with the address' '
    sed "s/^host_port = .*/host_port = 1/" $HR_CONF > $HR_DIR/bad.toml &&
    hakuriver.client --config $HR_DIR/bad.toml nodes 2>$HR_DIR/err; [ $? = 1 ] && grep -q "127.0.0.1:1" $HR_DIR/err'
test_expect_success 'config: an unknown key is an error naming file, line and key' '
    printf "[network]\nhost_prot = 1\n" > $HR_DIR/typo.toml &&
    hakuriver.client --config $HR_DIR/typo.toml nodes 2>$HR_DIR/err; [ $? = 1 ] &&
    grep -q "typo.toml:2" $HR_DIR/err && grep -q host_prot $HR_DIR/err'
test_expect_success 'a second runner claiming a live hostname is refused (409) and does not take over' '
    id1=$(hr_api GET /nodes | tail -n +2 | hr_json 0.node_id) &&
    hr_start_runner n1 --state-dir $HR_DIR/state-n1-impostor &&
    sleep 1.5 && grep -q "409\|already registered" $HR_DIR/runner-n1.log &&
    id2=$(hr_api GET /nodes | tail -n +2 | hr_json 0.node_id) && [ "$id1" = "$id2" ]'
done_testing
