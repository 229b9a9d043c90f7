#!/usr/bin/env bash
# t0410-runner-channel.t - the runner channel spoken by hand (curl as a runner): commands
# arrive with the reply to POST /update?ack=N, are acknowledged like a poll's, and are not
# sent twice
. "$(dirname "$0")/../lib/cluster.sh"
hr_setup
hr_start_host || exit 1

rc () { # METHOD PATH [BODY] as a runner (join token) -> body
    curl -s -X "$1" -H "Authorization: Bearer $HR_JOIN" -H "Content-Type: application/json" \
        ${3:+-d "$3"} "http://127.0.0.1:$HR_PORT$2"
}
NODE='"node":"fake1","node_id":"0123456789abcdef0123456789abcdef"'
seqs () { python3 -c 'import json,sys; print(" ".join(str(c["seq"]) for c in json.load(sys.stdin).get("commands", [])))'; }
runs () { python3 -c 'import json,sys; print(" ".join(str(c["task"]["task_id"]) for c in json.load(sys.stdin).get("commands", []) if c["op"] == "run"))'; }

test_expect_success 'a runner registers by hand' '
    rc POST /register "{\"hostname\":\"fake1\",\"node_id\":\"0123456789abcdef0123456789abcdef\",\"total_cores\":4}" |
        grep -q fake1 && hr_wait_node fake1 online'
test_expect_success 'an update without ack= gets no commands (older runners)' '
    id=$(hr_submit --container NULL --target fake1 -- true) && echo $id > $HR_DIR/id1 &&
    sleep 0.3 && rc POST /update "{$NODE,\"updates\":[]}" > $HR_DIR/r0 && cat $HR_DIR/r0 &&
    ! grep -q commands $HR_DIR/r0'
test_expect_success 'an update with ack= carries the queued run command' '
    rc POST "/update?ack=0" "{$NODE,\"updates\":[]}" > $HR_DIR/r1 && cat $HR_DIR/r1 &&
    [ "$(runs < $HR_DIR/r1)" = "$(cat $HR_DIR/id1)" ]'
test_expect_success 'a command already sent is not sent again with the next update' '
    rc POST "/update?ack=0" "{$NODE,\"updates\":[]}" > $HR_DIR/r2 && cat $HR_DIR/r2 &&
    [ -z "$(runs < $HR_DIR/r2)" ]'
test_expect_success 'an unacknowledged command is resent by the next poll, then acknowledged' '
    rc GET "/runner/poll/fake1?node_id=0123456789abcdef0123456789abcdef&ack=0&wait=0" > $HR_DIR/p1 &&
    cat $HR_DIR/p1 && [ "$(runs < $HR_DIR/p1)" = "$(cat $HR_DIR/id1)" ] &&
    seq=$(seqs < $HR_DIR/p1) &&
    rc POST "/update?ack=$seq" "{$NODE,\"updates\":[]}" > /dev/null &&
    rc GET "/runner/poll/fake1?node_id=0123456789abcdef0123456789abcdef&ack=$seq&wait=0" > $HR_DIR/p2 &&
    cat $HR_DIR/p2 && [ -z "$(seqs < $HR_DIR/p2)" ]'
test_expect_success 'the report of a task is answered with the next task for the freed cores' '
    id1=$(cat $HR_DIR/id1) &&
    id2=$(hr_submit --container NULL --target fake1 --cores 4 -- true) && sleep 0.3 &&
    [ "$(hr_task_status $id2)" = queued ] &&
    rc POST "/update?ack=1" "{$NODE,\"updates\":[{\"task_id\":\"$id1\",\"attempt\":1,\"status\":\"running\"}]}" > /dev/null &&
    rc POST "/update?ack=1" "{$NODE,\"updates\":[{\"task_id\":\"$id1\",\"attempt\":1,\"status\":\"completed\",\"exit_code\":0}]}" > $HR_DIR/r3 &&
    cat $HR_DIR/r3 && [ "$(runs < $HR_DIR/r3)" = "$id2" ]'
test_expect_success 'a malformed ack is treated as 0 and changes nothing' '
    rc POST "/update?ack=xyz" "{$NODE,\"updates\":[]}" > $HR_DIR/r4 && cat $HR_DIR/r4 &&
    grep -q "Task status updated" $HR_DIR/r4'
done_testing
