#!/usr/bin/env bash
# t0720-connect.t - hakuriver.task connect: a shell in the container of a running Docker task,
# through the host (WebSocket from the CLI) and the task's runner (which dials the host back
# after a "term" command on its long-poll): output, env, resize, exit status, pipes, two
# sessions at once, errors, the runner channel's checks, a task killed under the shell, and a
# runner that never answers
. "$(dirname "$0")/../lib/cluster.sh"
hr_need_docker
HR_TIMEOUT_FACTOR=60   # the last test stops the runner for 16 s: its node must stay online
hr_setup
hr_start_host || exit 1
hr_start_runner n1
hr_wait_node n1 online
BASE=hakuriver-test/busybox:latest
URL=http://127.0.0.1:$HR_PORT

# tests/lib/term_drive.py ROWS COLS STEP... -- CMD...: a command on a pseudo-terminal (see there)
pty () { python3 "$(dirname "$0")/../lib/term_drive.py" "$@"; }
# ws_status PATH TOKEN [QUERY]: the HTTP status of a WebSocket upgrade request to PATH
ws_status () {
    curl -s -o "$HR_DIR/ws.out" -m 10 -w '%{http_code}' -H "Authorization: Bearer $2" \
        -H "Upgrade: websocket" -H "Connection: Upgrade" -H "Sec-WebSocket-Version: 13" \
        -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "$URL$1"
}
procs () { # the command lines running in the container of task $1
    hr_docker GET "/containers/hakuriver-task-$1/top" | tail -n +2 |
        python3 -c 'import json,sys; print("\n".join(p[-1] for p in json.load(sys.stdin)["Processes"]))'
}

ID=$(hr_submit --image $BASE -- sleep 600)
test_expect_success 'setup: a long Docker task runs' 'hr_wait_status $ID running 60'
CHOST=$(hr_docker GET "/containers/hakuriver-task-$ID/json" | tail -n +2 | hr_json Config.Hostname)

test_expect_success 'through a pty: the task env, its hostname, stty size, SIGWINCH, raw mode, exit 3' '
    pty 30 90 sleep:1.5 mode "echo id-\$HAKURIVER_TASK_ID; echo host-\$(hostname)\n" sleep:1 "stty size\n" sleep:1 \
        resize:45:120 sleep:0.5 "stty size\n" sleep:1 "exit 3\n" -- hakuriver.task connect $ID > $HR_DIR/p.out
    cat $HR_DIR/p.out; grep -q "^EXIT=3" $HR_DIR/p.out && grep -q "^id-$ID" $HR_DIR/p.out &&
    grep -q "^host-$CHOST\$" $HR_DIR/p.out && grep -q "^30 90" $HR_DIR/p.out && grep -q "^45 120" $HR_DIR/p.out &&
    grep -q "^MODE=raw" $HR_DIR/p.out && grep -q "^FINAL=cooked" $HR_DIR/p.out'

test_expect_success 'Ctrl-D at the prompt ends the shell with status 0' '
    pty 24 80 sleep:1.5 "echo before-eof\n" sleep:1 "\x04" -- hakuriver.task connect $ID > $HR_DIR/d.out
    cat $HR_DIR/d.out; grep -q "^EXIT=0" $HR_DIR/d.out && grep -q "^before-eof" $HR_DIR/d.out'

test_expect_success 'piped stdin (no tty): the commands run, the shell'"'"'s status is the exit status' '
    out=$(printf "echo piped-\$((6*7))\nexit 4\n" | timeout 30 hakuriver.task connect $ID); rc=$?
    echo "$out"; [ $rc = 4 ] && echo "$out" | grep -q "^piped-42"'

test_expect_success 'two sessions on the same task at once' '
    (printf "echo one-\$((1+1))\nsleep 3\nexit 5\n" | timeout 30 hakuriver.task connect $ID > $HR_DIR/c1.out; echo $? > $HR_DIR/c1.rc) &
    (printf "echo two-\$((2+2))\nsleep 3\nexit 6\n" | timeout 30 hakuriver.task connect $ID > $HR_DIR/c2.out; echo $? > $HR_DIR/c2.rc) &
    for i in $(seq 1 50); do both=$(procs $ID | grep -c "^/bin/sh\$"); [ "$both" = 2 ] && break; sleep 0.1; done; wait
    echo "shells at once: $both"; cat $HR_DIR/c1.out $HR_DIR/c2.out
    [ "$both" = 2 ] && [ "$(cat $HR_DIR/c1.rc)" = 5 ] && [ "$(cat $HR_DIR/c2.rc)" = 6 ] &&
    grep -q "^one-2" $HR_DIR/c1.out && grep -q "^two-4" $HR_DIR/c2.out'

test_expect_success 'a client that vanishes (SIGKILL) gets its shell hung up' '
    hakuriver.task connect $ID < <(printf "sleep 5432\n"; exec sleep 30 2>/dev/null) > /dev/null 2>&1 &
    pid=$!
    for i in $(seq 1 150); do procs $ID | grep -q "sleep 5432" && break; sleep 0.1; done
    procs $ID | grep -q "sleep 5432" && kill -KILL $pid &&
    for i in $(seq 1 150); do procs $ID | grep -q "sleep 5432" || break; sleep 0.1; done &&
    ! procs $ID | grep -q "sleep 5432" && [ "$(procs $ID)" = "sleep 600" ]'

# errors
test_expect_success 'an unknown task: exit 1, "Task id not found", HTTP 404' '
    hakuriver.task connect 12345 < /dev/null 2> $HR_DIR/e.err; rc=$?; cat $HR_DIR/e.err
    [ $rc = 1 ] && grep -q "task 12345" $HR_DIR/e.err && grep -q "Task id not found" $HR_DIR/e.err &&
    grep -q "HTTP 404" $HR_DIR/e.err'
test_expect_success 'a completed task: exit 1, "is not running (status: completed)", HTTP 409' '
    done_id=$(hr_submit --image $BASE -- true) && hr_wait_status $done_id completed 60 &&
    { hakuriver.task connect $done_id < /dev/null 2> $HR_DIR/e.err; rc=$?; cat $HR_DIR/e.err
      [ $rc = 1 ] && grep -q "is not running (status: completed)" $HR_DIR/e.err && grep -q "HTTP 409" $HR_DIR/e.err; }'
test_expect_success 'a native task: exit 1, "has no container", HTTP 409' '
    nat=$(hr_submit --container NULL -- sleep 60) && hr_wait_status $nat running 30 &&
    { hakuriver.task connect $nat < /dev/null 2> $HR_DIR/e.err; rc=$?; cat $HR_DIR/e.err
      hakuriver.task kill $nat > /dev/null
      [ $rc = 1 ] && grep -q "runs natively" $HR_DIR/e.err && grep -q "HTTP 409" $HR_DIR/e.err; }'
test_expect_success 'a paused task: HTTP 409 naming its status' '
    hakuriver.task command $ID pause > /dev/null && hr_wait_status $ID paused 30 &&
    { hakuriver.task connect $ID < /dev/null 2> $HR_DIR/e.err; rc=$?; cat $HR_DIR/e.err
      hakuriver.task command $ID resume > /dev/null; hr_wait_status $ID running 30 &&
      [ $rc = 1 ] && grep -q "status: paused" $HR_DIR/e.err && grep -q "HTTP 409" $HR_DIR/e.err; }'
test_expect_success 'the runner'"'"'s reason reaches the user: a container paused behind its back' '
    [ "$(hr_docker POST /containers/hakuriver-task-$ID/pause | head -n 1)" = 204 ] &&
    { timeout 30 hakuriver.task connect $ID < /dev/null > /dev/null 2> $HR_DIR/e.err; rc=$?; cat $HR_DIR/e.err
      hr_docker POST /containers/hakuriver-task-$ID/unpause > /dev/null
      [ $rc = 1 ] && grep -q "error from host 127.0.0.1:$HR_PORT (task $ID): Container .hakuriver-task-$ID. is not running (status: paused)" $HR_DIR/e.err; }'
test_expect_success 'a wrong token: 401, exit 1, with the token hint' '
    HAKURIVER_TOKEN=wrong hakuriver.task connect $ID < /dev/null 2> $HR_DIR/e.err; rc=$?
    cat $HR_DIR/e.err; [ $rc = 1 ] && grep -q "Invalid token" $HR_DIR/e.err && grep -q "HTTP 401" $HR_DIR/e.err &&
    grep -q "hint: set \[auth\] api_token" $HR_DIR/e.err'
test_expect_success 'usage errors exit 2' '
    hakuriver.task connect < /dev/null; [ $? = 2 ] && { hakuriver.task connect abc < /dev/null; [ $? = 2 ]; } &&
    { hakuriver.task connect 1 2 < /dev/null; [ $? = 2 ]; } && hakuriver.task connect --help | grep -q "connect TASK_ID"'
test_expect_success 'a plain GET of the task terminal (not a WebSocket) is 400' '
    c=$(curl -s -o $HR_DIR/o -w "%{http_code}" -H "Authorization: Bearer $HR_TOKEN" "$URL/task/$ID/terminal") &&
    cat $HR_DIR/o && [ "$c" = 400 ] && grep -q "WebSocket" $HR_DIR/o'

# the runner channel
NODE_ID=$(hr_api GET /nodes | tail -n +2 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["node_id"])')
SESS=0123456789abcdef0123456789abcdef
test_expect_success 'the runner end needs the join token, not the API token (401)' '
    [ "$(ws_status "/runner/terminal/$SESS?hostname=n1&node_id=$NODE_ID" "$HR_TOKEN")" = 401 ]'
test_expect_success 'the runner end refuses a hostname/node_id that is not a registered runner (403)' '
    [ "$(ws_status "/runner/terminal/$SESS?hostname=n1&node_id=0000" "$HR_JOIN")" = 403 ] &&
    [ "$(ws_status "/runner/terminal/$SESS?hostname=nope&node_id=$NODE_ID" "$HR_JOIN")" = 403 ]'
test_expect_success 'the runner end of an unknown session is 404' '
    c=$(ws_status "/runner/terminal/$SESS?hostname=n1&node_id=$NODE_ID" "$HR_JOIN"); cat $HR_DIR/ws.out
    [ "$c" = 404 ] && grep -q "not found" $HR_DIR/ws.out'

test_expect_success 'only the runner of the task'"'"'s node can attach (another node: 403), and it can' '
    reg=$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Authorization: Bearer $HR_JOIN" -H "Content-Type: application/json" \
        --data "{\"hostname\":\"n2\",\"node_id\":\"fake2\",\"total_cores\":1,\"total_ram_bytes\":0,\"tasks\":[]}" $URL/register) &&
    [ "$reg" = 200 ] && kill -STOP "$(hr_runner_pid n1)" &&
    { (printf "echo attached-\$((5*5))\nexit 7\n"; sleep 1) | timeout 30 hakuriver.task connect $ID > $HR_DIR/a.out 2>&1 &
      pid=$!; sleep 1
      # what the stopped runner was sent, read as n1 would (no ack: it stays queued)
      sess=$(curl -s -H "Authorization: Bearer $HR_JOIN" "$URL/runner/poll/n1?node_id=$NODE_ID&wait=0" |
             python3 -c "import json,sys; print([c[\"session\"] for c in json.load(sys.stdin)[\"commands\"] if c[\"op\"] == \"term\"][-1])")
      c2=$(ws_status "/runner/terminal/$sess?hostname=n2&node_id=fake2" "$HR_JOIN"); cat $HR_DIR/ws.out; echo
      kill -CONT "$(hr_runner_pid n1)"; wait $pid; rc=$?; cat $HR_DIR/a.out
      [ "$c2" = 403 ] && grep -q "is not for node n2" $HR_DIR/ws.out && [ $rc = 7 ] && grep -q "^attached-25" $HR_DIR/a.out; }'

test_expect_success 'logs: the host names sessions, the runner its shells; no token anywhere' '
    grep -q "terminal [0-9a-f]*: task $ID: asked node n1 to open a shell" $HR_DIR/host.log &&
    grep -q "terminal [0-9a-f]*: opening /bin/sh in hakuriver-task-$ID" $HR_DIR/runner-n1.log &&
    ! grep -q "$HR_TOKEN\|$HR_JOIN" $HR_DIR/host.log $HR_DIR/runner-n1.log'

test_expect_success 'the task killed under the shell: a clear message and a non-zero exit' '
    hakuriver.task connect $ID < <(printf "echo ready-\$((3*3))\n"; exec sleep 60 2>/dev/null) > $HR_DIR/k.out 2> $HR_DIR/k.err &
    pid=$!
    for i in $(seq 1 100); do grep -q "^ready-9" $HR_DIR/k.out && break; sleep 0.1; done
    hakuriver.task kill $ID > /dev/null; wait $pid; rc=$?
    echo "rc=$rc"; cat $HR_DIR/k.out $HR_DIR/k.err
    [ $rc != 0 ] && grep -q "^ready-9" $HR_DIR/k.out && grep -q "Task $ID ended: its container hakuriver-task-$ID stopped" $HR_DIR/k.err'

test_expect_success 'a runner that never dials back: an error after 15 s, exit 1; the late command is refused' '
    id2=$(hr_submit --target n1 --image $BASE -- sleep 600) && hr_wait_status $id2 running 60 &&
    kill -STOP "$(hr_runner_pid n1)" &&
    { timeout 40 hakuriver.task connect $id2 < /dev/null > /dev/null 2> $HR_DIR/t.err; rc=$?
      kill -CONT "$(hr_runner_pid n1)"; cat $HR_DIR/t.err
      [ $rc = 1 ] && grep -q "did not open the terminal within 15 s" $HR_DIR/t.err; } &&
    for i in $(seq 1 100); do grep -q "the host refused it (404)" $HR_DIR/runner-n1.log && break; sleep 0.1; done &&
    grep -q "the host refused it (404)" $HR_DIR/runner-n1.log && hakuriver.task kill $id2 > /dev/null'

# the last two stop the daemons under open sessions
ID3=$(hr_submit --target n1 --image $BASE -- sleep 600)   # n1: the fake n2 never runs anything
opened () { grep -c "opening /bin/sh in hakuriver-task-$ID3" $HR_DIR/runner-n1.log; }
wait_opened () { # N: until the runner has opened N shells in $ID3
    for i in $(seq 1 100); do [ "$(opened)" -ge "$1" ] && return 0; sleep 0.1; done; return 1
}
test_expect_success 'the runner stopping under a session: a clear message, exit 1, a clean runner exit' '
    hr_wait_status $ID3 running 60 && rpid=$(hr_runner_pid n1) &&
    { hakuriver.task connect $ID3 < <(exec sleep 30 2>/dev/null) > /dev/null 2> $HR_DIR/rs.err &
      pid=$!; wait_opened 1 && sleep 0.5 && kill -TERM $rpid; wait $pid; rc=$?; cat $HR_DIR/rs.err
      [ $rc = 1 ] && grep -q "The runner of node n1 is shutting down" $HR_DIR/rs.err; } &&
    for i in $(seq 1 100); do kill -0 $rpid 2>/dev/null || break; sleep 0.1; done && ! kill -0 $rpid 2>/dev/null &&
    hr_start_runner n1 && hr_wait_node n1 online && hr_wait_status $ID3 running 30'
test_expect_success 'a session open when the host stops ends with a clear error (exit 1)' '
    hakuriver.task connect $ID3 < <(exec sleep 30 2>/dev/null) > /dev/null 2> $HR_DIR/stop.err &
    pid=$!; wait_opened 2 && sleep 0.5
    kill -TERM "$(hr_host_pid)"; wait $pid; rc=$?
    cat $HR_DIR/stop.err; [ $rc = 1 ] && grep -q "The host is shutting down" $HR_DIR/stop.err &&
    for i in $(seq 1 100); do kill -0 "$(hr_host_pid)" 2>/dev/null || break; sleep 0.1; done &&
    ! kill -0 "$(hr_host_pid)" 2>/dev/null'

done_testing
