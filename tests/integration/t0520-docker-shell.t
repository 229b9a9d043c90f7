#!/usr/bin/env bash
# t0520-docker-shell.t - hakuriver.docker-shell: a real terminal (pty) into a host environment
# container over the host's WebSocket; resize, Ctrl-D, pipes, protocol details, errors
. "$(dirname "$0")/../lib/cluster.sh"
hr_need_docker
hr_setup
hr_start_host || exit 1
C=$HR_ENV_PREFIX-shell
STOPPED=$HR_ENV_PREFIX-stopped
URL=http://127.0.0.1:$HR_PORT/docker/host/containers
new_container () { # NAME: created from the test image, labelled so that teardown removes it
    hr_docker POST "/containers/create?name=$1" "{\"Image\":\"hakuriver-test/busybox:latest\",\"Cmd\":[\"sleep\",\"infinity\"],\"Labels\":{\"hakuriver.shared_dir\":\"$HR_DIR/shared\"}}" | head -n 1
}
procs () { # the command lines running in container $C
    hr_docker GET "/containers/$C/top" | tail -n +2 |
        python3 -c 'import json,sys; print("\n".join(p[-1] for p in json.load(sys.stdin)["Processes"]))'
}


# ws.py CASE: speaks WebSocket to the terminal endpoint directly (raw frames, masked)
cat > "$HR_DIR/ws.py" <<'EOF'
import base64, json, os, socket, struct, sys
port, name, token, case = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(('127.0.0.1', port), timeout=20)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(('GET /docker/host/containers/%s/terminal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'
           'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n'
           'Authorization: Bearer %s\r\n\r\n' % (name, key, token)).encode())
buf = b''
while b'\r\n\r\n' not in buf:
    buf += s.recv(4096)
head, buf = buf.split(b'\r\n\r\n', 1)
assert head.startswith(b'HTTP/1.1 101'), head
def frame(op, payload, fin=True):
    mask = os.urandom(4)
    n = len(payload)
    h = bytes([(0x80 if fin else 0) | op])
    if n < 126: h += bytes([0x80 | n])
    elif n < 65536: h += bytes([0x80 | 126]) + struct.pack('>H', n)
    else: h += bytes([0x80 | 127]) + struct.pack('>Q', n)
    m = (mask * (n // 4 + 1))[:n]
    return h + mask + (int.from_bytes(payload, 'big') ^ int.from_bytes(m, 'big')).to_bytes(n, 'big')
def recv_frame():
    global buf
    while True:
        if len(buf) >= 2:
            n, o = buf[1] & 0x7f, 2
            if n == 126 and len(buf) >= 4: n, o = struct.unpack('>H', buf[2:4])[0], 4
            elif n == 127 and len(buf) >= 10: n, o = struct.unpack('>Q', buf[2:10])[0], 10
            if n < 126 or o > 2:
                assert not buf[1] & 0x80, 'server frames must not be masked'
                if len(buf) >= o + n:
                    f = (buf[0] & 0x0f, buf[o:o + n]); buf = buf[o + n:]; return f
        d = s.recv(65536)
        if not d: return (None, b'')
        buf += d
def send_json(o): s.sendall(frame(1, json.dumps(o).encode()))
def until(pred):
    text = ''
    while True:
        op, p = recv_frame()
        if op is None: print('EOF'); return text
        if op == 1:
            m = json.loads(p)
            if m['type'] == 'output': text += m['data']
            else: print('MSG', json.dumps(m, sort_keys=True))
        elif op == 8:
            print('CLOSE', struct.unpack('>H', p[:2])[0] if len(p) >= 2 else None)
            s.sendall(frame(8, p[:2]))   # answer it, as a client should
            return text
        elif op == 10: print('PONG', p.decode())
        if pred(op, text): return text
send_json({'type': 'resize', 'rows': 50, 'cols': 132})
if case == 'exit':
    s.sendall(frame(1, b'not json'))                                            # ignored
    send_json({'type': 'bogus'})                                                # ignored
    s.sendall(frame(9, b'hi'))                                                  # ping
    # an input message in three fragments, a ping between them
    msg = json.dumps({'type': 'input', 'data': 'stty size; echo frag-$((40+2)); exit 6\n'}).encode()
    s.sendall(frame(1, msg[:10], False) + frame(9, b'mid') + frame(0, msg[10:20], False) + frame(0, msg[20:]))
    text = until(lambda op, t: False)
    print('SIZE-OK' if '50 132' in text else 'SIZE-BAD')
    print('FRAG-OK' if 'frag-42' in text else 'FRAG-BAD')
elif case == 'toobig':
    s.sendall(frame(1, b'{"type":"input","data":"' + b'x' * (1 << 20) + b'"}'))
    until(lambda op, t: False)
elif case == 'unmasked':
    s.sendall(b'\x81\x02{}')
    until(lambda op, t: False)
elif case == 'close':
    send_json({'type': 'input', 'data': 'sleep 4321\n'})
    until(lambda op, t: 'sleep 4321' in t)
    s.sendall(frame(8, struct.pack('>H', 1000) + b'bye'))
    until(lambda op, t: False)
EOF
pty () { python3 "$(dirname "$0")/../lib/term_drive.py" "$@"; }
ws () { timeout 30 python3 "$HR_DIR/ws.py" "$HR_PORT" "$1" "$HR_TOKEN" "$2"; }

test_expect_success 'setup: a running and a stopped environment container' '
    [ "$(new_container "$C")" = 201 ] && [ "$(hr_docker POST "/containers/$C/start" | head -n 1)" = 204 ] &&
    [ "$(new_container "$STOPPED")" = 201 ]'

test_expect_success 'through script(1): the output of a command, stty size of the pty, the exit status' '
    (sleep 1; printf "echo hello-\$((20+22))\nstty size\nexit 3\n"; sleep 3) |
        script -qfec "stty rows 40 cols 100; hakuriver.docker-shell $C" /dev/null > $HR_DIR/s.out
    rc=$?; cat -v $HR_DIR/s.out; [ $rc = 3 ] && grep -q "^hello-42" $HR_DIR/s.out && grep -q "^40 100" $HR_DIR/s.out'

test_expect_success 'the terminal is raw during the session, its size follows SIGWINCH, and is restored' '
    pty 30 90 sleep:1.5 mode "stty size\n" sleep:1 resize:45:120 sleep:0.5 "stty size\n" sleep:1 "exit 0\n" -- \
        hakuriver.docker-shell "$C" > $HR_DIR/p.out
    cat $HR_DIR/p.out; grep -q "^EXIT=0" $HR_DIR/p.out && grep -q "^30 90" $HR_DIR/p.out &&
    grep -q "^45 120" $HR_DIR/p.out && grep -q "^MODE=raw" $HR_DIR/p.out && grep -q "^FINAL=cooked" $HR_DIR/p.out'

test_expect_success 'Ctrl-D at the prompt ends the shell with status 0' '
    pty 24 80 sleep:1 "echo before-eof\n" sleep:1 "\x04" -- hakuriver.docker-shell "$C" > $HR_DIR/d.out
    cat $HR_DIR/d.out; grep -q "^EXIT=0" $HR_DIR/d.out && grep -q "^before-eof" $HR_DIR/d.out'

test_expect_success 'Ctrl-C reaches the remote shell (it interrupts a command there, not the client)' '
    pty 24 80 sleep:1 "sleep 30; echo not-interrupted\n" sleep:1 "\x03" sleep:0.5 "echo status-\$?\n" sleep:0.5 "exit 2\n" -- \
        hakuriver.docker-shell "$C" > $HR_DIR/c.out
    cat $HR_DIR/c.out; grep -q "^EXIT=2" $HR_DIR/c.out && grep -q "^status-130" $HR_DIR/c.out &&
    ! grep -q "^not-interrupted" $HR_DIR/c.out'

test_expect_success 'SIGTERM to the client restores the terminal and exits 128+15' '
    pty 24 80 sleep:1.5 mode kill:SIGTERM -- hakuriver.docker-shell "$C" > $HR_DIR/k.out
    cat $HR_DIR/k.out; grep -q "^EXIT=143" $HR_DIR/k.out && grep -q "^MODE=raw" $HR_DIR/k.out &&
    grep -q "^FINAL=cooked" $HR_DIR/k.out'

test_expect_success 'piped stdin: the commands run and the end of input ends the shell' '
    out=$(printf "echo piped-\$((6*7))\n" | timeout 20 hakuriver.docker-shell "$C"); rc=$?
    echo "$out"; [ $rc = 0 ] && echo "$out" | grep -q "^piped-42"'
test_expect_success 'piped stdin: the exit status of the remote shell is the client'"'"'s' '
    printf "exit 9\n" | timeout 20 hakuriver.docker-shell "$C" > /dev/null; [ $? = 9 ]'
test_expect_success 'piped stdin: a last line without a newline still runs' '
    out=$(printf "echo no-newline-\$((1+1))" | timeout 20 hakuriver.docker-shell "$C"); rc=$?
    echo "$out"; [ $rc = 0 ] && echo "$out" | grep -q "^no-newline-2"'

test_expect_success 'output that is not UTF-8 arrives as valid UTF-8 with U+FFFD' '
    printf "printf \"caf\\\\303\\\\251 \\\\377 end\\\\n\"\nexit\n" | timeout 20 hakuriver.docker-shell "$C" > $HR_DIR/u.out &&
    python3 -c "import sys; t = open(sys.argv[1], \"rb\").read().decode(\"utf-8\"); print(t); sys.exit(0 if \"caf\u00e9 \ufffd end\" in t else 1)" $HR_DIR/u.out'

test_expect_success 'protocol: resize, ignored junk, ping/pong, fragments, then exit and close 1000' '
    out=$(ws "$C" exit); echo "$out"
    echo "$out" | grep -q "^PONG hi" && echo "$out" | grep -q "^PONG mid" && echo "$out" | grep -q SIZE-OK &&
    echo "$out" | grep -q FRAG-OK && echo "$out" | grep -q "^MSG {\"code\": 6, \"type\": \"exit\"}" &&
    echo "$out" | grep -q "^CLOSE 1000"'
test_expect_success 'protocol: a message over 1 MiB is closed with 1009' '
    out=$(ws "$C" toobig); echo "$out"; echo "$out" | grep -q "^CLOSE 1009"'
test_expect_success 'protocol: an unmasked client frame is closed with 1002' '
    out=$(ws "$C" unmasked); echo "$out"; echo "$out" | grep -q "^CLOSE 1002"'
test_expect_success 'protocol: a close from the client is answered and hangs up the remote shell' '
    out=$(ws "$C" close); echo "$out"; echo "$out" | grep -q "^CLOSE 1000" &&
    for i in $(seq 1 150); do procs | grep -q "sleep 4321" || break; sleep 0.1; done &&
    ! procs | grep -q "sleep 4321"'

test_expect_success 'a client that vanishes (SIGKILL) gets its remote shell hung up' '
    hakuriver.docker-shell "$C" < <(printf "sleep 5432\n"; exec sleep 30 2>/dev/null) > /dev/null 2>&1 &
    pid=$!
    for i in $(seq 1 150); do procs | grep -q "sleep 5432" && break; sleep 0.1; done
    procs | grep -q "sleep 5432" && kill -KILL $pid &&
    for i in $(seq 1 150); do procs | grep -q "sleep 5432" || break; sleep 0.1; done &&
    ! procs | grep -q "sleep 5432" && [ "$(procs)" = "sleep infinity" ]'

test_expect_success 'the host answers other requests while a session is open' '
    hakuriver.docker-shell "$C" < <(exec sleep 5 2>/dev/null) > /dev/null 2>&1 &
    pid=$!; sleep 1
    c=$(curl -s -o /dev/null -m 2 -w "%{http_code}" -H "Authorization: Bearer $HR_TOKEN" http://127.0.0.1:$HR_PORT/nodes)
    kill $pid; wait $pid; [ "$c" = 200 ]'

# errors
test_expect_success 'an unknown container: exit 1, a message naming the container and the host' '
    hakuriver.docker-shell "$HR_ENV_PREFIX-nope" < /dev/null 2> $HR_DIR/e.err; rc=$?; cat $HR_DIR/e.err
    [ $rc = 1 ] && grep -q "not found" $HR_DIR/e.err && grep -q "$HR_ENV_PREFIX-nope" $HR_DIR/e.err &&
    grep -q "127.0.0.1:$HR_PORT" $HR_DIR/e.err && grep -q "HTTP 404" $HR_DIR/e.err'
test_expect_success 'a stopped container: exit 1, "is not running", HTTP 409' '
    hakuriver.docker-shell "$STOPPED" < /dev/null 2> $HR_DIR/e.err; rc=$?; cat $HR_DIR/e.err
    [ $rc = 1 ] && grep -q "is not running (status: created)" $HR_DIR/e.err && grep -q "HTTP 409" $HR_DIR/e.err'
test_expect_success 'no token: 401, exit 1, with the token hint' '
    grep -v api_token $HR_CONF > $HR_DIR/notoken.toml
    HAKURIVER_TOKEN= hakuriver.docker-shell --config $HR_DIR/notoken.toml "$C" < /dev/null 2> $HR_DIR/e.err; rc=$?
    cat $HR_DIR/e.err; [ $rc = 1 ] && grep -q "HTTP 401" $HR_DIR/e.err && grep -q "Missing Authorization" $HR_DIR/e.err &&
    grep -q "hint: set \[auth\] api_token" $HR_DIR/e.err'
test_expect_success 'a wrong token: 401, exit 1' '
    HAKURIVER_TOKEN=wrong hakuriver.docker-shell "$C" < /dev/null 2> $HR_DIR/e.err; rc=$?
    cat $HR_DIR/e.err; [ $rc = 1 ] && grep -q "Invalid token" $HR_DIR/e.err'
test_expect_success 'an unreachable host: exit 1 naming host and container' '
    sed "s/host_port = $HR_PORT/host_port = $(hr_free_port)/" $HR_CONF > $HR_DIR/noport.toml
    hakuriver.docker-shell --config $HR_DIR/noport.toml "$C" < /dev/null 2> $HR_DIR/e.err; rc=$?
    cat $HR_DIR/e.err; [ $rc = 1 ] && grep -q "cannot reach host" $HR_DIR/e.err && grep -q "$C" $HR_DIR/e.err'
test_expect_success 'usage errors exit 2' '
    hakuriver.docker-shell; [ $? = 2 ] && { hakuriver.docker-shell a b; [ $? = 2 ]; } &&
    { hakuriver.docker-shell --bogus "$C"; [ $? = 2 ]; } && { hakuriver.docker-shell "a/b"; [ $? = 2 ]; } &&
    hakuriver.docker-shell --help | grep -q "usage: hakuriver.docker-shell"'
test_expect_success 'a plain GET of the terminal path (not a WebSocket) is 400' '
    c=$(curl -s -o $HR_DIR/o -w "%{http_code}" -H "Authorization: Bearer $HR_TOKEN" "$URL/$C/terminal") &&
    cat $HR_DIR/o && [ "$c" = 400 ] && grep -q "WebSocket" $HR_DIR/o'
test_expect_success 'the terminal path without a token is 401' '
    c=$(curl -s -o /dev/null -w "%{http_code}" -H "Upgrade: websocket" -H "Connection: Upgrade" "$URL/$C/terminal") &&
    [ "$c" = 401 ]'
test_expect_success 'a WebSocket version other than 13 is 400 naming version 13' '
    curl -s -D $HR_DIR/h -o $HR_DIR/o -H "Authorization: Bearer $HR_TOKEN" -H "Upgrade: websocket" -H "Connection: Upgrade" \
        -H "Sec-WebSocket-Version: 8" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "$URL/$C/terminal" &&
    head -n 1 $HR_DIR/h | grep -q " 400" && grep -qi "^Sec-WebSocket-Version: 13" $HR_DIR/h'
test_expect_success 'a bad Sec-WebSocket-Key is 400' '
    c=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $HR_TOKEN" -H "Upgrade: websocket" -H "Connection: Upgrade" \
        -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: short" "$URL/$C/terminal") && [ "$c" = 400 ]'
test_expect_success 'the host log names sessions but never the token' '
    grep -q "terminal: opening /bin/sh in container $C" $HR_DIR/host.log && ! grep -q "$HR_TOKEN" $HR_DIR/host.log'

# last: stops the host under an open session
test_expect_success 'a session open when the host stops ends with a clear error (exit 1)' '
    hakuriver.docker-shell "$C" < <(exec sleep 30 2>/dev/null) > /dev/null 2> $HR_DIR/stop.err &
    pid=$!; sleep 1.5
    kill -TERM "$(hr_host_pid)"; wait $pid; rc=$?
    cat $HR_DIR/stop.err; [ $rc = 1 ] && grep -q "shutting down" $HR_DIR/stop.err &&
    for i in $(seq 1 100); do kill -0 "$(hr_host_pid)" 2>/dev/null || break; sleep 0.1; done &&
    ! kill -0 "$(hr_host_pid)" 2>/dev/null'

done_testing
