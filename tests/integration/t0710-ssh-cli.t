#!/usr/bin/env bash
# t0710-ssh-cli.t - hakuriver.ssh with real OpenSSH on both sides: a real sshd (own host key,
# own authorized_keys) behind a small fake SSH proxy that speaks the host's wire protocol.
# Both modes (local port + ssh, and --proxy-command), scp both ways, exit statuses, proxy
# errors, a missing ssh, signal handling, and the API token kept out of every argv.
. "$(dirname "$0")/../lib/cluster.sh"
hr_setup
exec </dev/null   # nothing here reads the terminal; ssh would otherwise forward it

# ---- prerequisites: OpenSSH client and server ---------------------------------------------
if ! command -v ssh >/dev/null || ! command -v scp >/dev/null || [ ! -x /usr/sbin/sshd ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y openssh-client openssh-server >&2 ||
            { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y \
                openssh-client openssh-server >&2; }
    fi
fi
if ! command -v ssh >/dev/null || [ ! -x /usr/sbin/sshd ] || [ "$(id -u)" != 0 ]; then
    if [ "${CI:-}" = true ]; then echo "Bail out! OpenSSH client/server or root missing"; exit 1; fi
    echo "1..0 # SKIP needs root and OpenSSH (ssh, scp, /usr/sbin/sshd)"; exit 0
fi

D=$HR_DIR/ssh
mkdir -p "$D/fakebin" "$D/nossh"
chmod 700 "$D"
mkdir -p /run/sshd && chmod 755 /run/sshd   # sshd's privilege separation directory

# ---- a real sshd on a free port ------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C hr-test-host -f "$D/host_key" || exit 1
ssh-keygen -q -t ed25519 -N '' -C hr-test-user -f "$D/id" || exit 1
cp "$D/id.pub" "$D/authorized_keys"
SSHD_PORT=$(hr_free_port)
cat > "$D/sshd_config" <<EOF
ListenAddress 127.0.0.1
HostKey $D/host_key
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
# the key files live under /tmp (mode 1777), which StrictModes would refuse
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
/usr/sbin/sshd -D -e -f "$D/sshd_config" -p "$SSHD_PORT" >"$D/sshd.out" 2>&1 &
SSHD_PID=$!
disown "$SSHD_PID"
_hr_pids+=("$SSHD_PID")

# ---- the fake proxy: the host's protocol, relaying to the sshd above ------------------------
# 123: tunnel to sshd, "SUCCESS\n" sent in one segment with the server's banner
# 404: "Task 404 not found."   500: the first request gets a tunnel, later ones an error
# 321: as 123, but the proxy drops the connection after 2 s (the VPS or the host went away)
# 777: replies nothing (reply timeout)   999: SUCCESS, then a reset
# a wrong AUTH line: "Invalid token."; none: "Authentication required." (as the host's proxy)
cat > "$D/proxy.py" <<'EOF'
import os, socket, struct, sys, threading
port_file, sshd_port, log = sys.argv[1], int(sys.argv[2]), sys.argv[4]
token = open(sys.argv[3]).read().strip()  # from a file: argv is what the test checks
lock = threading.Lock()
seen = {}

def note(s):
    with lock:
        with open(log, "a") as f:
            f.write(s + "\n")

def readline(c):
    b = b""
    while not b.endswith(b"\n") and len(b) < 4096:
        x = c.recv(1)
        if not x:
            break
        b += x
    return b.decode(errors="replace").rstrip("\r\n")

def pump(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass

def handle(c):
    try:
        c.settimeout(10)
        line = readline(c)
        authed = False
        if line.startswith("AUTH "):
            if line[5:] != token:
                note("bad-token")
                c.sendall(b"ERROR Invalid token.\n")
                return
            authed = True
            line = readline(c)
        if not authed and token:
            note("no-token")
            c.sendall(b"ERROR Authentication required.\n")
            return
        if not line.startswith("REQUEST_TUNNEL "):
            c.sendall(b"ERROR Invalid request format.\n")
            return
        tid = line.split(" ", 1)[1]
        with lock:
            seen[tid] = seen.get(tid, 0) + 1
            n = seen[tid]
        note("request %s auth=%s" % (tid, "yes" if authed else "no"))
        if tid == "404":
            c.sendall(b"ERROR Task 404 not found.\n")
            return
        if tid == "777":
            threading.Event().wait(30)
            return
        if tid == "999":
            c.sendall(b"SUCCESS\n")
            threading.Event().wait(0.5)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return                        # the close in finally: is a reset
        if tid == "500" and n > 1:
            c.sendall(b"ERROR Task 500 is not a VPS task.\n")
            return
        if tid not in ("123", "321", "500"):
            c.sendall(("ERROR Task %s not found.\n" % tid).encode())
            return
        s = socket.create_connection(("127.0.0.1", sshd_port), timeout=15)
        s.settimeout(None)
        c.settimeout(None)
        banner = s.recv(65536)           # the server speaks first
        c.sendall(b"SUCCESS\n" + banner)  # one segment: the client must keep the banner
        if tid == "321":
            def drop():
                for x in (c, s):
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            threading.Timer(2, drop).start()
        t = threading.Thread(target=pump, args=(s, c), daemon=True)
        t.start()
        pump(c, s)
        t.join()
        s.close()
    except OSError as e:
        note("error %s" % e)
    finally:
        c.close()

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
EOF
printf '%s\n' "$HR_TOKEN" > "$D/proxy.token"
python3 "$D/proxy.py" "$D/proxy.port" "$SSHD_PORT" "$D/proxy.token" "$D/proxy.requests" \
    >"$D/proxy.out" 2>&1 &
PROXY_PID=$!
disown "$PROXY_PID"
_hr_pids+=("$PROXY_PID")

for i in $(seq 1 100); do
    [ -s "$D/proxy.port" ] && (exec 3<>/dev/tcp/127.0.0.1/$SSHD_PORT) 2>/dev/null && break
    sleep 0.1
done
PROXY_PORT=$(cat "$D/proxy.port" 2>/dev/null)
if [ -z "$PROXY_PORT" ] || ! (exec 3<>/dev/tcp/127.0.0.1/$SSHD_PORT) 2>/dev/null; then
    echo "Bail out! sshd or the fake proxy did not start"
    sed 's/^/# /' "$D/sshd.out" "$D/proxy.out"; exit 1
fi

# The CLI's configuration: where the proxy is, and the token (the file is the only place).
C=$D/config.toml
cat > "$C" <<EOF
[network]
host_reachable_address = "127.0.0.1"
host_ssh_proxy_port = $PROXY_PORT

[auth]
api_token = "$HR_TOKEN"
EOF
chmod 600 "$C"
export HAKURIVER_CONFIG=$C
unset HAKURIVER_TOKEN

# ssh options for a throw-away host key and no prompts
SSH_OPTS=(-i "$D/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
          -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=20)
PC="hakuriver.ssh --config $C --proxy-command"
dd if=/dev/urandom of="$D/big.bin" bs=1M count=5 status=none
BIG_SUM=$(sha256sum < "$D/big.bin" | cut -d' ' -f1)

# t LOGNAME CMD...: runs CMD with a 60 s limit, stdout to $D/LOGNAME.stdout, stderr to
# $HR_DIR/LOGNAME.log (teardown fails the file on a sanitizer report there); returns its status
t () {
    local name=$1; shift
    timeout -k 5 60 "$@" >"$D/$name.stdout" 2>"$HR_DIR/$name.log"
}
show () { echo "--- stdout"; cat "$D/$1.stdout"; echo "--- stderr"; cat "$HR_DIR/$1.log"; }

# ---- local-port mode with the real ssh -------------------------------------------------------

mode1_remote_command () {
    t m1 hakuriver.ssh --config "$C" 123 -- "${SSH_OPTS[@]}" 'echo hello-from-vps'
    local rc=$?
    show m1
    [ $rc = 0 ] && [ "$(cat "$D/m1.stdout")" = hello-from-vps ] &&
        grep -Eq '^hakuriver.ssh: Connecting using: ssh root@127.0.0.1 -p [0-9]+$' "$HR_DIR/m1.log"
}
test_expect_success 'local-port mode: ssh runs a remote command through the proxy' \
    mode1_remote_command

mode1_exit_status () {
    t m1x hakuriver.ssh 123 -- "${SSH_OPTS[@]}" 'echo out; echo err >&2; exit 7'
    local rc=$?
    show m1x
    [ $rc = 7 ] && [ "$(cat "$D/m1x.stdout")" = out ] && grep -q '^err$' "$HR_DIR/m1x.log"
}
test_expect_success 'local-port mode: the exit status is the remote command'"'"'s (exit 7 -> 7)' \
    mode1_exit_status

mode1_stdin_stream () {
    t m1s hakuriver.ssh 123 -- "${SSH_OPTS[@]}" sha256sum < "$D/big.bin"
    local rc=$?
    show m1s | head -n 20
    [ $rc = 0 ] && [ "$(cut -d' ' -f1 "$D/m1s.stdout")" = "$BIG_SUM" ]
}
test_expect_success 'local-port mode: 5 MB of stdin reach the remote command intact' \
    mode1_stdin_stream

# On a terminal: an interactive login; Ctrl-C is the remote side's (hakuriver.ssh ignores it)
cat > "$D/term.py" <<'EOF'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
def wait_for(what, t):
    global out
    end = time.time() + t
    while time.time() < end and what not in out:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                b = os.read(fd, 4096)
            except OSError:
                b = b""
            if not b:
                break
            out += b
    return what in out
ok = wait_for(b"READY-42", 0) or (os.write(fd, b"echo READY-$((40+2))\r") and wait_for(b"READY-42", 30))
os.write(fd, b"sleep 20; echo after-sleep\r")
time.sleep(1)
os.write(fd, b"\x03")
os.write(fd, b"echo ALIVE-$((1+1))\r")
ok = ok and wait_for(b"ALIVE-2", 10)
os.write(fd, b"exit 5\r")
wait_for(b"\0", 10)
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
print("\nready+alive:", ok, "exit:", os.waitstatus_to_exitcode(st))
sys.exit(0 if ok and b"\nafter-sleep" not in out and os.waitstatus_to_exitcode(st) == 5 else 1)
EOF
interactive_terminal () {
    local start=$SECONDS
    t tty python3 "$D/term.py" hakuriver.ssh 123 -- -i "$D/id" -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR || { show tty; return 1; }
    [ $((SECONDS - start)) -lt 20 ]   # the remote sleep 20 was interrupted
}
test_expect_success 'local-port mode on a terminal: interactive login, Ctrl-C reaches the remote command, exit 5' \
    interactive_terminal

# ---- ProxyCommand mode with the real ssh, scp and rsync ---------------------------------------

mode2_ssh () {
    t m2 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PC 123" root@vps-123 'echo hello-via-proxycommand; exit 3'
    local rc=$?
    show m2
    [ $rc = 3 ] && [ "$(cat "$D/m2.stdout")" = hello-via-proxycommand ]
}
test_expect_success 'ProxyCommand mode: ssh -o ProxyCommand runs a remote command' mode2_ssh

mode2_scp () {
    rm -f "$D/up.bin" "$D/down.bin"
    t scp-up scp -q "${SSH_OPTS[@]}" -o ProxyCommand="$PC 123" "$D/big.bin" "root@vps-123:$D/up.bin" ||
        { show scp-up; return 1; }
    t scp-down scp -q "${SSH_OPTS[@]}" -o ProxyCommand="$PC 123" "root@vps-123:$D/up.bin" "$D/down.bin" ||
        { show scp-down; return 1; }
    [ "$(sha256sum < "$D/up.bin" | cut -d' ' -f1)" = "$BIG_SUM" ] &&
        [ "$(sha256sum < "$D/down.bin" | cut -d' ' -f1)" = "$BIG_SUM" ]
}
test_expect_success 'ProxyCommand mode: scp copies 5 MB up and back down intact' mode2_scp

mode2_rsync () {
    rm -rf "$D/rs"; mkdir -p "$D/rs/src"
    cp "$D/big.bin" "$D/rs/src/a.bin"; echo small > "$D/rs/src/b.txt"
    t rsync rsync -a -e "ssh ${SSH_OPTS[*]} -o ProxyCommand='$PC 123'" "$D/rs/src/" \
        "root@vps-123:$D/rs/dst/" || { show rsync; return 1; }
    cmp "$D/rs/src/a.bin" "$D/rs/dst/a.bin" && cmp "$D/rs/src/b.txt" "$D/rs/dst/b.txt"
}
if command -v rsync >/dev/null; then
    test_expect_success 'ProxyCommand mode: rsync -e "ssh -o ProxyCommand=..." copies a tree' \
        mode2_rsync
else
    # scripts/install-deps.sh --test installs rsync: under CI its absence is a failure
    if [ "${CI:-}" = true ]; then echo "Bail out! rsync is not installed (CI must run this test)"; exit 1; fi
    _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # SKIP rsync is not installed"
fi

# The ~/.ssh/config pattern of docs/ssh.md: "ssh hakuriver-vps-<id>" for ssh, scp, rsync, ...
ssh_config_pattern () {
    cat > "$D/ssh_config" <<EOF
Host hakuriver-vps-*
    User root
    IdentityFile $D/id
    BatchMode yes
    LogLevel ERROR
    UserKnownHostsFile $D/known_hosts
    ProxyCommand sh -c 'exec hakuriver.ssh --config $C --proxy-command "\${1#hakuriver-vps-}"' sh %n
EOF
    rm -f "$D/known_hosts"
    # the local-port mode records the host key under its HostKeyAlias...
    t kh1 hakuriver.ssh 123 -- -i "$D/id" -o BatchMode=yes -o LogLevel=ERROR \
        -o UserKnownHostsFile="$D/known_hosts" -o StrictHostKeyChecking=accept-new \
        -o HashKnownHosts=no 'echo first' || { show kh1; return 1; }
    grep -q '^hakuriver-vps-123 ssh-ed25519 ' "$D/known_hosts" || { cat "$D/known_hosts"; return 1; }
    # ...which is the name the pattern's host has: no new entry needed (StrictHostKeyChecking=yes)
    t kh2 ssh -F "$D/ssh_config" -o StrictHostKeyChecking=yes hakuriver-vps-123 'echo second' ||
        { show kh2; return 1; }
    [ "$(cat "$D/kh2.stdout")" = second ] || return 1
    rm -f "$D/kh.bin"
    t kh3 scp -F "$D/ssh_config" -o StrictHostKeyChecking=yes -q "$D/big.bin" \
        "hakuriver-vps-123:$D/kh.bin" || { show kh3; return 1; }
    cmp "$D/big.bin" "$D/kh.bin"
}
test_expect_success 'the ~/.ssh/config pattern (Host hakuriver-vps-*) works and shares known_hosts with the local-port mode' \
    ssh_config_pattern

# ---- errors ------------------------------------------------------------------------------------

unknown_id_mode1 () {
    t e404 hakuriver.ssh 404 -- "${SSH_OPTS[@]}" true
    local rc=$?
    show e404
    # reported once, plainly, before ssh is started
    [ $rc = 1 ] && grep -qx 'hakuriver.ssh: proxy error: Task 404 not found.' "$HR_DIR/e404.log" &&
        ! grep -q 'Connecting using' "$HR_DIR/e404.log"
}
test_expect_success 'local-port mode: an unknown task is a proxy error, exit 1, ssh not started' \
    unknown_id_mode1

unknown_id_mode2 () {
    t e404p $PC 404 < /dev/null
    local rc=$?
    show e404p
    [ $rc = 1 ] && grep -qx 'hakuriver.ssh: proxy error: Task 404 not found.' "$HR_DIR/e404p.log" &&
        [ ! -s "$D/e404p.stdout" ] || return 1
    # through ssh: the message reaches the user, ssh fails (255)
    t e404s ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PC 404" root@vps-404 true
    rc=$?
    show e404s
    [ $rc = 255 ] && grep -q 'hakuriver.ssh: proxy error: Task 404 not found.' "$HR_DIR/e404s.log"
}
test_expect_success 'ProxyCommand mode: an unknown task is a proxy error, exit 1 (ssh: 255)' \
    unknown_id_mode2

wrong_token () {
    HAKURIVER_TOKEN=not-the-token t tok1 hakuriver.ssh 123 -- "${SSH_OPTS[@]}" true
    local rc=$?
    show tok1
    [ $rc = 1 ] && grep -qx 'hakuriver.ssh: proxy error: Invalid token.' "$HR_DIR/tok1.log" &&
        grep -q 'hint: set \[auth\] api_token' "$HR_DIR/tok1.log" || return 1
    HAKURIVER_TOKEN=not-the-token t tok2 $PC 123 < /dev/null
    rc=$?
    show tok2
    [ $rc = 1 ] && grep -qx 'hakuriver.ssh: proxy error: Invalid token.' "$HR_DIR/tok2.log" || return 1
    # and without any token the request carries no AUTH line
    printf '[network]\nhost_reachable_address = "127.0.0.1"\nhost_ssh_proxy_port = %s\n' \
        "$PROXY_PORT" > "$D/notoken.toml"
    t tok3 hakuriver.ssh --config "$D/notoken.toml" --proxy-command 123 < /dev/null
    rc=$?
    show tok3
    [ $rc = 1 ] && grep -qx 'hakuriver.ssh: proxy error: Authentication required.' "$HR_DIR/tok3.log" &&
        grep -q 'hint: .*(none is set)' "$HR_DIR/tok3.log" &&
        tail -n1 "$D/proxy.requests" | grep -qx 'no-token'
}
test_expect_success 'a wrong token (HAKURIVER_TOKEN overrides the file) or none: a proxy error with a hint, exit 1' \
    wrong_token

bad_ids () {
    local id rc
    for id in abc 12x -5 '' 1.5 99999999999999999999; do
        t badid hakuriver.ssh "$id"; rc=$?
        [ $rc = 2 ] || { echo "local-port mode, ID '$id': exit $rc"; show badid; return 1; }
        t badid $PC "$id"; rc=$?
        [ $rc = 2 ] || { echo "proxy-command mode, ID '$id': exit $rc"; show badid; return 1; }
    done
    grep -q 'invalid task ID `99999999999999999999`' "$HR_DIR/badid.log" || return 1
    # other usage errors: a missing ID, ssh options without --, mode-2-only restrictions
    t u1 hakuriver.ssh; [ $? = 2 ] || return 1
    t u2 hakuriver.ssh 123 -v; [ $? = 2 ] && grep -q 'go after `--`' "$HR_DIR/u2.log" || return 1
    t u3 $PC 123 --user bob; [ $? = 2 ] || return 1
    t u4 $PC 123 -- -v; [ $? = 2 ] || return 1
    t u5 hakuriver.ssh 123 --proxy-port 0; [ $? = 2 ] || return 1
    t u6 hakuriver.ssh 123 --user=-oProxyCommand=x; [ $? = 2 ] || return 1
    t u7 hakuriver.ssh --help; [ $? = 0 ] && grep -q 'proxy-command' "$D/u7.stdout"
}
test_expect_success 'a non-numeric task ID and other usage errors exit 2' bad_ids

no_ssh_binary () {
    ln -sf "$(command -v hakuriver)" "$D/nossh/hakuriver.ssh"
    t nossh env PATH="$D/nossh" "$D/nossh/hakuriver.ssh" --config "$C" 123 -- true
    local rc=$?
    show nossh
    [ $rc = 127 ] && grep -q 'cannot run `ssh`: not found on PATH' "$HR_DIR/nossh.log"
}
test_expect_success 'no ssh on PATH: exit 127 with a message saying so' no_ssh_binary

proxy_unreachable () {
    local port rc
    port=$(hr_free_port)
    t down1 hakuriver.ssh 123 --proxy-port "$port" -- true; rc=$?
    show down1
    [ $rc = 1 ] && grep -qx "hakuriver.ssh: error: cannot reach the SSH proxy at 127.0.0.1:$port: Connection refused" \
        "$HR_DIR/down1.log" || return 1
    t down2 $PC 123 --host 127.0.0.1 --proxy-port "$port" < /dev/null; rc=$?
    show down2
    [ $rc = 1 ] && grep -q "cannot reach the SSH proxy at 127.0.0.1:$port" "$HR_DIR/down2.log"
}
test_expect_success 'a proxy that cannot be reached: a clear message and exit 1 (both modes)' \
    proxy_unreachable

busy_local_port () {
    t busy hakuriver.ssh 123 --local-port "$PROXY_PORT" -- true
    local rc=$?
    show busy
    [ $rc = 1 ] && grep -q "cannot listen on 127.0.0.1:$PROXY_PORT: Address already in use" \
        "$HR_DIR/busy.log"
}
test_expect_success 'a --local-port in use: exit 1 naming the port' busy_local_port

# ---- local-port mode with a fake ssh: argv, several connections, signals -----------------------
# The fake records its argv, opens $FAKE_CONNS connections to the -p port and prints the first
# line each one receives, then behaves as $FAKE_END says.
cat > "$D/fakebin/ssh" <<'EOF'
#!/usr/bin/env bash
printf '%s\n' "$@" > "$FAKE_ARGV"
port=; prev=
for a in "$@"; do [ "$prev" = -p ] && port=$a; prev=$a; done
for i in $(seq 1 "${FAKE_CONNS:-1}"); do
    python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(20)
b = b""
while b"\n" not in b:
    x = s.recv(4096)
    if not x:
        break
    b += x
print(repr(b.split(b"\n")[0] + b"\n" if b"\n" in b else b))
PY
done
case ${FAKE_END:-exit} in
exit) exit 42 ;;
signal) kill -KILL $$ ;;
term) sleep 30 & trap 'kill $!; exit 99' TERM; echo waiting; wait; exit 98 ;;
esac
EOF
chmod 755 "$D/fakebin/ssh"

fake_argv_and_connections () {
    local port
    port=$(hr_free_port)
    FAKE_ARGV=$D/argv FAKE_CONNS=3 PATH="$D/fakebin:$PATH" \
        t fake1 hakuriver.ssh 500 --user alice --local-port "$port" -- -v -o Foo=bar 'uname -a'
    local rc=$?
    show fake1
    # ssh's exit status, its argv, and one tunnel per connection: the first gets the SSH banner,
    # the later ones (refused by the proxy) the 0.3-style "Proxy Error" line
    [ $rc = 42 ] || return 1
    printf '%s\n' -p "$port" -o HostKeyAlias=hakuriver-vps-500 alice@127.0.0.1 -v -o Foo=bar \
        'uname -a' | diff - "$D/argv" || return 1
    sed -n 1p "$D/fake1.stdout" | grep -q "^b'SSH-2.0-" || return 1
    [ "$(sed -n 2,3p "$D/fake1.stdout")" = "b'Proxy Error: Task 500 is not a VPS task.\\r\\n'
b'Proxy Error: Task 500 is not a VPS task.\\r\\n'" ] || return 1
    [ "$(grep -c 'proxy error: Task 500 is not a VPS task.' "$HR_DIR/fake1.log")" = 2 ] &&
        grep -qx "hakuriver.ssh: Connecting using: ssh alice@127.0.0.1 -p $port" "$HR_DIR/fake1.log"
}
test_expect_success 'local-port mode: ssh argv, a tunnel per connection, errors as "Proxy Error" lines' \
    fake_argv_and_connections

fake_signals () {
    FAKE_ARGV=$D/argv2 FAKE_CONNS=0 FAKE_END=signal PATH="$D/fakebin:$PATH" t fake2 hakuriver.ssh 123
    local rc=$?
    [ $rc = 137 ] || { echo "ssh killed by SIGKILL: exit $rc"; show fake2; return 1; }
    # SIGTERM to hakuriver.ssh alone is passed on to ssh, whose status is then ours
    FAKE_ARGV=$D/argv3 FAKE_CONNS=0 FAKE_END=term PATH="$D/fakebin:$PATH" \
        hakuriver.ssh 123 >"$D/fake3.stdout" 2>"$HR_DIR/fake3.log" &
    local pid=$! i
    for i in $(seq 1 100); do grep -q waiting "$D/fake3.stdout" && break; sleep 0.05; done
    kill -INT $pid   # Ctrl-C belongs to ssh: ignored by hakuriver.ssh
    sleep 0.2
    kill -0 $pid || { echo "SIGINT ended hakuriver.ssh"; return 1; }
    kill -TERM $pid
    wait $pid; rc=$?
    show fake3
    [ $rc = 99 ]
}
test_expect_success 'local-port mode: 128+signal when ssh is killed; SIGTERM is passed on to ssh' \
    fake_signals

reply_timeout () {
    local start=$SECONDS rc
    t slow $PC 777 < /dev/null; rc=$?
    show slow
    [ $rc = 1 ] && grep -q 'no reply from the SSH proxy at 127.0.0.1:[0-9]* within 10 s' \
        "$HR_DIR/slow.log" && [ $((SECONDS - start)) -ge 9 ] && [ $((SECONDS - start)) -le 20 ]
}
test_expect_success 'a proxy that never answers: "no reply ... within 10 s", exit 1' reply_timeout

stop_while_waiting () {
    local pid rc start=$SECONDS
    hakuriver.ssh 777 -- true >"$D/wait.stdout" 2>"$HR_DIR/wait.log" &
    pid=$!
    sleep 1
    kill -TERM $pid
    wait $pid; rc=$?
    [ $rc = 143 ] && [ $((SECONDS - start)) -lt 5 ] || { echo "exit $rc after $((SECONDS - start)) s"; return 1; }
}
test_expect_success 'local-port mode: SIGTERM ends the wait for the proxy at once (143)' stop_while_waiting

dropped_tunnel () {
    local start=$SECONDS rc
    t drop1 hakuriver.ssh 321 -- "${SSH_OPTS[@]}" 'sleep 30'; rc=$?
    show drop1
    [ $rc = 255 ] && [ $((SECONDS - start)) -lt 15 ] || { echo "local-port mode: $rc after $((SECONDS - start)) s"; return 1; }
    start=$SECONDS
    t drop2 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PC 321" root@vps-321 'sleep 30'; rc=$?
    show drop2
    [ $rc = 255 ] && [ $((SECONDS - start)) -lt 15 ] || { echo "ProxyCommand mode: $rc after $((SECONDS - start)) s"; return 1; }
}
test_expect_success 'a tunnel dropped under a session ends ssh (255) promptly in both modes' \
    dropped_tunnel

reset_tunnel () {
    t reset $PC 999 < /dev/null
    local rc=$?
    show reset
    [ $rc = 1 ] && grep -qx 'hakuriver.ssh: error: tunnel to task 999 via 127.0.0.1:[0-9]*: reading from the proxy: connection reset by the peer' \
        "$HR_DIR/reset.log"
}
test_expect_success 'ProxyCommand mode: a reset tunnel is an error naming the side, exit 1' reset_tunnel

# ---- the token never shows in any argv -----------------------------------------------------------

token_not_in_argv () {
    # grep -f: a grep with the token in its own argv would show in ps
    local pids p bad=0 tok=$D/proxy.token
    ssh "${SSH_OPTS[@]}" -o ProxyCommand="$PC 123" root@vps-123 'sleep 3' >/dev/null 2>&1 &
    local a=$!
    hakuriver.ssh 123 -- "${SSH_OPTS[@]}" 'sleep 3' >/dev/null 2>&1 &
    local b=$!
    sleep 1.5
    pids=$(pgrep -f 'hakuriver.ssh')
    [ "$(echo "$pids" | wc -w)" -ge 2 ] || { echo "expected 2 running hakuriver.ssh, got: $pids"; bad=1; }
    for p in $pids $(pgrep -x ssh); do
        if tr '\0' '\n' < /proc/$p/cmdline 2>/dev/null | grep -qFf "$tok"; then
            echo "token in the argv of $p"; bad=1
        fi
        if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qFf "$tok"; then
            echo "token in the environment of $p"; bad=1
        fi
    done
    ps -eo pid,args > "$D/ps.out"
    grep -Ff "$tok" "$D/ps.out" && { echo "token in ps output"; bad=1; }
    wait $a || bad=1
    wait $b || bad=1
    grep -lFf "$tok" "$HR_DIR"/*.log "$D"/*.stdout && { echo "token printed"; bad=1; }
    # the proxy did receive it (every tunnel above was authorised)
    grep -q 'request 123 auth=yes' "$D/proxy.requests" || bad=1
    [ $bad = 0 ]
}
test_expect_success 'the API token is in no argv, environment, ps line or output' token_not_in_argv

# ---- memory checks: valgrind on both modes (skipped for a sanitizer build) -----------------------

valgrind_modes () {
    local vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"
    t vg1 ssh "${SSH_OPTS[@]}" -o ProxyCommand="$vg --log-file=$HR_DIR/vg-pc-%p.log $PC 123" \
        root@vps-123 'echo vg-ok' || { show vg1; return 1; }
    [ "$(cat "$D/vg1.stdout")" = vg-ok ] || return 1
    t vg2 scp -q "${SSH_OPTS[@]}" -o ProxyCommand="$vg --log-file=$HR_DIR/vg-scp-%p.log $PC 123" \
        "$D/big.bin" "root@vps-123:$D/vg.bin" || { show vg2; return 1; }
    cmp "$D/big.bin" "$D/vg.bin" || return 1
    t vg3 $vg --log-file="$HR_DIR/vg-err-%p.log" hakuriver.ssh --proxy-command 404 < /dev/null
    [ $? = 1 ] || { show vg3; return 1; }
    t vg4 $vg --log-file="$HR_DIR/vg-m1-%p.log" hakuriver.ssh 123 -- "${SSH_OPTS[@]}" 'echo vg-m1'
    [ $? = 0 ] && [ "$(cat "$D/vg4.stdout")" = vg-m1 ] || { show vg4; return 1; }
    local f i bad=0
    # ssh does not wait for its ProxyCommand after the SIGHUP: let valgrind finish its report
    for i in $(seq 1 100); do pgrep -f "$HR_DIR/vg-" >/dev/null || break; sleep 0.1; done
    for f in "$HR_DIR"/vg-*.log; do
        [ -s "$f" ] && { echo "== $f"; cat "$f"; bad=1; }
    done
    [ $bad = 0 ]
}
if ! command -v valgrind >/dev/null; then
    _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # SKIP valgrind is not installed"
elif ldd "$(command -v hakuriver)" 2>/dev/null | grep -q 'lib[at]san'; then
    _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # SKIP sanitizer build: valgrind does not apply"
else
    test_expect_success 'valgrind: no errors or leaks in either mode (ssh, scp, a refusal)' valgrind_modes
fi

done_testing
