#!/usr/bin/env bash
# t0600-hakurun.t - hakurun: expansion order, --dry-run, exit status, --jobs, signal
# forwarding, Python modules, and both documented ways of using it with a cluster
. "$(dirname "$0")/../lib/cluster.sh"
hr_setup
W=$HR_DIR/work
mkdir -p "$W"

dry_run_prints_pasteable_commands () {
    local out want list='span:[x, "y,z", "it'\''s"]'
    out=$(hakurun --dry-run echo "a b" 'span:{-1..0}' "$list") || return 1
    want="echo 'a b' -1 x
echo 'a b' -1 y,z
echo 'a b' -1 'it'\\''s'
echo 'a b' 0 x
echo 'a b' 0 y,z
echo 'a b' 0 'it'\\''s'"
    [ "$out" = "$want" ] || { printf 'got:\n%s\nwant:\n%s\n' "$out" "$want"; return 1; }
    # pasted into a shell, the lines print what hakurun itself runs
    [ "$(printf '%s\n' "$out" | bash)" = "$(hakurun -q echo "a b" 'span:{-1..0}' "$list")" ]
}
test_expect_success '--dry-run prints one shell-quoted command per combination, last argument fastest' \
    dry_run_prints_pasteable_commands

test_expect_success 'plain arguments pass unchanged; a command with one combination runs once' '
    [ "$(hakurun echo "span" "{1..2}" "[a]")" = "span {1..2} [a]" ]'

test_expect_success 'an empty span gives no combination: nothing runs, exit 0 (as 0.3)' '
    out=$(hakurun touch $W/never "span:{3..1}" 2>&1) && [ ! -e $W/never ] &&
    echo "$out" | grep -q "no argument combinations"'

malformed_span_exits_2 () {
    local out rc
    out=$(hakurun echo ok 'span:{1..x}' 2>&1); rc=$?
    echo "$out"
    [ $rc = 2 ] && echo "$out" | grep -q 'argument 2 `span:{1..x}`' &&
        echo "$out" | grep -q 'at position 10' || return 1
    out=$(hakurun echo 'span:["a,b"' 2>&1); rc=$?
    echo "$out"
    [ $rc = 2 ] && echo "$out" | grep -q 'argument 1 .*unterminated list' || return 1
    out=$(hakurun --jobs 0 echo x 2>&1); rc=$?
    [ $rc = 2 ] && echo "$out" | grep -q 'invalid --jobs'
}
test_expect_success 'a malformed span exits 2 naming the argument and the position' malformed_span_exits_2

exit_status_reports_failures () {
    local rc
    hakurun -q sh -c 'exit $0' 'span:[0,0,0]' || return 1
    hakurun -q sh -c 'exit $0' 'span:[0,3,0,4]'; rc=$?
    [ $rc = 3 ] || { echo "sequential: $rc"; return 1; }
    hakurun -q --parallel sh -c 'exit $0' 'span:[0,5,0,6]'; rc=$?
    [ $rc = 5 ] || { echo "parallel: $rc"; return 1; }
    hakurun -q sh -c 'kill -9 $$' 'span:{1..2}'; rc=$?
    [ $rc = 137 ] || { echo "signal: $rc"; return 1; }
    hakurun ./no-such-program x; rc=$?
    [ $rc = 127 ] || { echo "not found: $rc"; return 1; }
    hakurun false; rc=$?
    [ $rc = 1 ]
}
test_expect_success 'the exit status is that of the first failed combination (0.3 always said 0)' \
    exit_status_reports_failures

test_expect_success 'all combinations run even after a failure, and the failures are listed' '
    out=$(hakurun sh -c "echo ran-\$0; exit \$0" "span:[0,2,0]" 2>&1); rc=$?
    [ $rc = 2 ] && [ $(echo "$out" | grep -c "^ran-") = 3 ] &&
    echo "$out" | grep -q "combination 2/3 exited with code 2" &&
    echo "$out" | grep -q "1 of 3 combinations failed (2)"'

# Each combination marks itself running, records how many are running, then leaves.
CONC='touch "$1/run.$0"; ls "$1" | grep -c "^run\." > "$1/seen.$0"; sleep 0.6; rm -f "$1/run.$0"'
max_concurrency () { # DIR
    cat "$1"/seen.* | sort -n | tail -n1
}
jobs_bound_concurrency () {
    rm -rf "$W/c1" "$W/c2" "$W/c3"; mkdir -p "$W/c1" "$W/c2" "$W/c3"
    hakurun -q --jobs 2 sh -c "$CONC" 'span:{1..6}' "$W/c1" || return 1
    [ "$(ls "$W/c1" | grep -c '^seen\.')" = 6 ] || return 1
    echo "--jobs 2: max $(max_concurrency "$W/c1")"
    [ "$(max_concurrency "$W/c1")" = 2 ] || return 1
    hakurun -q --jobs 4 sh -c "$CONC" 'span:{1..4}' "$W/c2" || return 1
    echo "--jobs 4: max $(max_concurrency "$W/c2")"
    [ "$(max_concurrency "$W/c2")" = 4 ] || return 1
    hakurun -q sh -c "$CONC" 'span:{1..3}' "$W/c3" || return 1
    echo "sequential: max $(max_concurrency "$W/c3")"
    [ "$(max_concurrency "$W/c3")" = 1 ]
}
test_expect_success '--jobs N runs at most N at once (and reaches N); without --parallel one at a time' \
    jobs_bound_concurrency

# The background hakurun writes to a file: a command substitution around the test would
# otherwise wait for it to close the pipe.
sigterm_is_forwarded () {
    local d=$W/sig pid rc i
    rm -rf "$d"; mkdir -p "$d"
    hakurun --jobs 3 sh -c 'trap "echo term-$0 >> $1/got; exit 0" TERM; echo up >> $1/ready
        while :; do sleep 0.1; done' 'span:{1..3}' "$d" >"$d/log" 2>&1 &
    pid=$!
    for i in $(seq 1 200); do [ "$(cat "$d/ready" 2>/dev/null | wc -l)" = 3 ] && break; sleep 0.05; done
    [ "$(cat "$d/ready" 2>/dev/null | wc -l)" = 3 ] || { kill -KILL $pid; return 1; }
    kill -TERM $pid
    wait $pid; rc=$?
    cat "$d/log"; echo "rc $rc"; sort "$d/got"
    [ $rc = 143 ] && [ "$(sort "$d/got" | tr '\n' ' ')" = "term-1 term-2 term-3 " ]
}
test_expect_success 'SIGTERM to hakurun reaches every running combination; it exits 128+15' \
    sigterm_is_forwarded

sigterm_stops_new_starts () {
    local d=$W/sig2 pid rc i
    rm -rf "$d"; mkdir -p "$d"
    hakurun sh -c 'echo $0 >> $1/started; echo $$ > $1/pid.$0; exec sleep 30' 'span:{1..3}' "$d" \
        >"$d/log" 2>&1 &
    pid=$!
    for i in $(seq 1 200); do [ -s "$d/pid.1" ] && break; sleep 0.05; done
    kill -TERM $pid
    wait $pid; rc=$?
    sleep 0.3
    echo "rc $rc; started: $(cat "$d/started")"
    [ $rc = 143 ] && [ "$(cat "$d/started")" = 1 ] && ! kill -0 "$(cat "$d/pid.1")" 2>/dev/null
}
test_expect_success 'after a signal no further combination starts (sequential)' sigterm_stops_new_starts

cat > "$W/sweepmod.py" <<'PY'
import sys
print("argv", " ".join(sys.argv))
def run(a, b):
    print("run", type(a).__name__, a, b)
def fail(code):
    sys.exit(int(code))
PY
python_module_app () {
    local out
    out=$(cd / && PYTHONPATH=$W hakurun -q sweepmod:run 'span:{1..2}' 'span:[x,y]' | sort) || return 1
    echo "$out"
    [ "$out" = "$(printf 'argv sweepmod:run 1 x\nargv sweepmod:run 1 y\nargv sweepmod:run 2 x\nargv sweepmod:run 2 y\nrun str 1 x\nrun str 1 y\nrun str 2 x\nrun str 2 y')" ] || return 1
    # a bare module name runs its top level with sys.argv = [APP] + values; the working
    # directory is on sys.path, as in 0.3
    out=$(cd "$W" && hakurun -q --jobs 2 sweepmod 'span:[a,b]' | sort) || return 1
    [ "$out" = "$(printf 'argv sweepmod a\nargv sweepmod b')" ] || return 1
    (cd "$W" && hakurun -q sweepmod:fail 'span:[0,7]'); [ $? = 7 ] || return 1
    out=$(cd "$W" && hakurun sweepmod:nofunc 1 2>&1); [ $? != 0 ] &&
        echo "$out" | grep -q "has no function" || return 1
    [ "$(cd "$W" && hakurun -n sweepmod:run 'span:{1..2}' z)" = "$(printf 'hakurun sweepmod:run 1 z\nhakurun sweepmod:run 2 z')" ]
}
test_expect_success 'a Python module (mod, mod:func) runs through python3, values as strings' python_module_app

hr_start_host || exit 1
hr_start_runner n1
hr_wait_node n1 online

method1_pipe_to_bash () {
    local first out ids id want got
    first="hakuriver.task submit --container NULL --cores 0 -- sh -c 'echo \$0-\$1'"
    out=$(hakurun echo "$first" 'span:{1..3}' 'span:[A,B]' | bash) || return 1
    echo "$out"
    ids=$(echo "$out" | sed -n 's/^Submitted task \([0-9]*\)$/\1/p')
    [ "$(echo "$ids" | wc -l)" = 6 ] || return 1
    got=$(for id in $ids; do hr_wait_status $id completed >/dev/null || echo "FAILED $id"
        hakuriver.task stdout $id; done | sort | tr '\n' ' ')
    want="1-A 1-B 2-A 2-B 3-A 3-B "
    echo "got: $got"
    [ "$got" = "$want" ]
}
test_expect_success 'method 1: hakurun echo "hakuriver.task submit ..." spans | bash makes one task per combination' \
    method1_pipe_to_bash

method2_inside_a_task () {
    local id out
    id=$(hr_submit --container NULL --cores 0 -- hakurun --parallel python3 -c \
        'import sys; print("value", sys.argv[1])' 'span:{1..4}') || return 1
    hr_wait_status $id completed 60 || { hakuriver.task stderr $id; return 1; }
    out=$(hakuriver.task stdout $id | sort | tr '\n' ' ')
    echo "$out"
    [ "$out" = "value 1 value 2 value 3 value 4 " ] || return 1
    # a failing combination fails the task (0.3's hakurun exited 0 regardless)
    id=$(hr_submit --container NULL --cores 0 -- hakurun --jobs 2 sh -c 'exit $0' 'span:[0,9]') || return 1
    hr_wait_status $id failed 30 &&
        [ "$(hr_api GET /status/$id | tail -n +2 | hr_json exit_code)" = 9 ]
}
test_expect_success 'method 2: hakurun --parallel as the command of one task runs the sweep inside it' \
    method2_inside_a_task

done_testing
