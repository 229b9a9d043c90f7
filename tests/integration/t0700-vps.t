#!/usr/bin/env bash
# t0700-vps.t - VPS tasks end to end with a real engine, a real sshd in a locally built image
# and the real OpenSSH client: submit waits for the SSH banner, hakuriver.ssh and
# ProxyCommand logins, scp, the proxy's error replies, pause/resume, runner restart, node
# loss and return, a container stopped with its node (reboot) started again, setup failure,
# kill, and bad input.
. "$(dirname "$0")/../lib/cluster.sh"
hr_need_docker
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
"$ROOT/scripts/build-vps-test-image.sh" >&2 || { echo "Bail out! cannot build the sshd test image"; exit 1; }
command -v ssh >/dev/null && command -v scp >/dev/null || { echo "Bail out! no OpenSSH client"; exit 1; }
hr_setup
hr_start_host || exit 1
hr_start_runner n1
hr_wait_node n1 online
IMG=hakuriver-test/sshd:latest
KEY=$HR_DIR/key
ssh-keygen -q -t ed25519 -N '' -C hr-test -f "$KEY"
ssh-keygen -q -t ed25519 -N '' -C other -f "$HR_DIR/otherkey"
SSH_OPTS=(-i "$KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
          -o LogLevel=ERROR -o ConnectTimeout=20)
export HOME=$HR_DIR/home   # no default key of the machine's user is picked up by accident
mkdir -p "$HOME"
# vps_submit ARGS...: prints the new VPS's id (submit waits until it answers over SSH)
vps_submit () {
    hakuriver.vps submit --public-key-file "$KEY.pub" "$@" 2> "$HR_DIR/submit.err" > "$HR_DIR/submit.out"
    local rc=$?
    sed -n 's/.*Created Task ID: \([0-9]*\).*/\1/p' "$HR_DIR/submit.err" | head -n 1
    return $rc
}
via_hr_ssh () { hakuriver.ssh "$1" -- "${SSH_OPTS[@]}" "${@:2}"; }
via_proxy_command () { ssh "${SSH_OPTS[@]}" -o "ProxyCommand=hakuriver.ssh --proxy-command $1" root@vps-$1 "${@:2}"; }
# proxy_says [AUTH-LINE] ID: the proxy's first reply line to a raw handshake
proxy_says () {
    python3 - "$HR_PROXY_PORT" "$@" <<'PY'
import socket, sys
port, args = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
msg = b"".join(a.encode() + b"\n" for a in args[:-1]) + b"REQUEST_TUNNEL " + args[-1].encode() + b"\n"
s.sendall(msg)
buf = b""
while b"\n" not in buf:
    d = s.recv(4096)
    if not d: break
    buf += d
print(buf.split(b"\n")[0].decode(errors="replace"))
PY
}

test_expect_success 'vps submit waits until the SSH server answers, then prints how to connect' '
    t0=$(date +%s.%N) && ID=$(vps_submit --image $IMG --cores 1 --memory 256M) &&
    t1=$(date +%s.%N) && echo "$ID" > $HR_DIR/vps1 && cat $HR_DIR/submit.out &&
    diag "submit -> running (SSH answers): $(python3 -c "print(round($t1 - $t0, 2))") s" &&
    grep -q "VPS $ID is running on n1 (SSH port [0-9]*)" $HR_DIR/submit.out &&
    grep -q "hakuriver.ssh $ID" $HR_DIR/submit.out && [ "$(hr_task_status $ID)" = running ]'
ID=$(cat $HR_DIR/vps1 2>/dev/null)
test_expect_success 'status and /vps/status show it with its SSH port; the container is hakuriver-vps-<id>' '
    port=$(hr_api GET /status/$ID | tail -n +2 | hr_json ssh_port) && [ "$port" -gt 0 ] &&
    hakuriver.vps status > $HR_DIR/st.out && cat $HR_DIR/st.out &&
    grep -E "^$ID +running +n1 +$port " $HR_DIR/st.out &&
    [ "$(hr_api GET /vps/status | tail -n +2 | hr_json 0.ssh_port)" = "$port" ] &&
    [ "$(hr_api GET /vps | tail -n +2 | hr_json 0.task_type)" = vps ] &&
    hr_docker GET /containers/hakuriver-vps-$ID/json | head -n 1 | grep -q 200'
test_expect_success 'hakuriver.ssh ID logs in through the host proxy and runs a command' '
    out=$(via_hr_ssh $ID "echo hello-from-vps; hostname; cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes") &&
    echo "$out" && [ "$(echo "$out" | head -n 2 | tr "\n" " ")" = "hello-from-vps vps-$ID " ] &&
    [ "$(echo "$out" | tail -n 1)" = 256000000 ]'
test_expect_success 'the exit status of the remote command comes back through hakuriver.ssh' '
    via_hr_ssh $ID "exit 7"; [ $? = 7 ]'
test_expect_success 'ssh -o ProxyCommand="hakuriver.ssh --proxy-command ID" works' '
    [ "$(via_proxy_command $ID "echo via-proxy-command")" = via-proxy-command ]'
test_expect_success 'scp copies a 5 MB file both ways through the proxy (checksums match)' '
    head -c 5000000 /dev/urandom > $HR_DIR/blob &&
    scp -q "${SSH_OPTS[@]}" -o "ProxyCommand=hakuriver.ssh --proxy-command $ID" $HR_DIR/blob root@vps:/tmp/blob &&
    scp -q "${SSH_OPTS[@]}" -o "ProxyCommand=hakuriver.ssh --proxy-command $ID" root@vps:/tmp/blob $HR_DIR/blob.back &&
    cmp $HR_DIR/blob $HR_DIR/blob.back &&
    [ "$(via_proxy_command $ID "md5sum /tmp/blob" | cut -d" " -f1)" = "$(md5sum < $HR_DIR/blob | cut -d" " -f1)" ]'
test_expect_success 'a key that is not authorized is refused by the VPS sshd' '
    ! ssh -i $HR_DIR/otherkey -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
        -o LogLevel=ERROR -o "ProxyCommand=hakuriver.ssh --proxy-command $ID" root@vps true 2> $HR_DIR/e.err &&
    grep -qi "permission denied" $HR_DIR/e.err'
test_expect_success 'ten logins at once through the proxy' '
    for i in $(seq 1 10); do (via_proxy_command $ID "echo n$i" > $HR_DIR/par.$i 2>&1) & done; wait &&
    for i in $(seq 1 10); do [ "$(cat $HR_DIR/par.$i)" = n$i ] || { cat $HR_DIR/par.$i; exit 1; }; done'
test_expect_success 'hakuriver.vps connect: a shell in the VPS without SSH, through a pty, exit status' '
    python3 "$ROOT/tests/lib/term_drive.py" 24 80 sleep:1.5 "echo in-\$(hostname); exit 5\n" sleep:1 \
        -- hakuriver.vps connect $ID > $HR_DIR/c.out
    cat $HR_DIR/c.out; grep -q "^in-vps-$ID" $HR_DIR/c.out && grep -q "^EXIT=5" $HR_DIR/c.out'

CMD=$(hr_submit --container NULL -- sleep 60)
test_expect_success 'proxy errors: unknown id, a command task, bad format, no or wrong token' '
    [ "$(proxy_says "AUTH $HR_TOKEN" 424242)" = "ERROR Task 424242 not found." ] &&
    [ "$(proxy_says "AUTH $HR_TOKEN" $CMD)" = "ERROR Task $CMD is not a VPS task." ] &&
    [ "$(proxy_says "AUTH $HR_TOKEN" abc)" = "ERROR Invalid task ID format." ] &&
    [ "$(proxy_says $ID)" = "ERROR Authentication required." ] &&
    [ "$(proxy_says "AUTH wrong" $ID)" = "ERROR Invalid token." ] &&
    [ "$(proxy_says "AUTH $HR_TOKEN" $ID | cut -c1-8)" = SUCCESS ]'
test_expect_success 'hakuriver.ssh names the proxy error and fails (both modes); a wrong token too' '
    ! hakuriver.ssh --proxy-command 424242 < /dev/null > /dev/null 2> $HR_DIR/e.err &&
    grep -q "Task 424242 not found." $HR_DIR/e.err &&
    ! hakuriver.ssh $CMD -- "${SSH_OPTS[@]}" true 2> $HR_DIR/e.err && grep -q "is not a VPS task" $HR_DIR/e.err &&
    ! HAKURIVER_TOKEN=wrong hakuriver.ssh --proxy-command $ID < /dev/null > /dev/null 2> $HR_DIR/e.err &&
    grep -q "Invalid token." $HR_DIR/e.err'
hakuriver.task kill $CMD > /dev/null

test_expect_success 'pause: the VPS is paused and keeps its resources; resume: SSH works again' '
    hakuriver.vps command $ID pause && hr_wait_status $ID paused 10 &&
    [ "$(hr_api GET /nodes | tail -n +2 | hr_json 0.cores_in_use)" = 1 ] &&
    [ "$(hr_docker GET /containers/hakuriver-vps-$ID/json | tail -n +2 | hr_json State.Status)" = paused ] &&
    hakuriver.vps command $ID resume && hr_wait_status $ID running 10 &&
    [ "$(via_proxy_command $ID "echo resumed")" = resumed ]'
test_expect_success 'runner restart (kill -9): the VPS is re-adopted, still running, same port' '
    port=$(hr_api GET /status/$ID | tail -n +2 | hr_json ssh_port) &&
    kill -9 $(hr_runner_pid n1) && sleep 0.5 && hr_start_runner n1 && hr_wait_node n1 online &&
    sleep 2 && [ "$(hr_task_status $ID)" = running ] &&
    [ "$(hr_api GET /status/$ID | tail -n +2 | hr_json ssh_port)" = "$port" ] &&
    [ "$(via_proxy_command $ID "echo after-restart")" = after-restart ]'
test_expect_success 'node loss: the VPS is lost and the proxy says the node is offline; it comes back running' '
    kill -STOP $(hr_runner_pid n1) && hr_wait_node n1 offline 20 && hr_wait_status $ID lost 10 &&
    [ "$(proxy_says "AUTH $HR_TOKEN" $ID)" = "ERROR Assigned node for VPS task $ID is not online." ] &&
    kill -CONT $(hr_runner_pid n1) && hr_wait_node n1 online 20 && hr_wait_status $ID running 20 &&
    [ "$(via_proxy_command $ID "echo back")" = back ]'
test_expect_success 'node reboot (runner, shim and container stopped): the VPS starts again and reports its port' '
    kill -9 $(hr_runner_pid n1) && sleep 0.2 &&
    pkill -9 -f -- "--state-dir $HR_DIR/state-n1" &&
    hr_docker POST "/containers/hakuriver-vps-$ID/stop?t=1" | head -n 1 | grep -q 204 &&
    hr_start_runner n1 && hr_wait_node n1 online && hr_wait_status $ID running 60 &&
    for i in $(seq 1 100); do via_proxy_command $ID "echo rebooted" > $HR_DIR/rb.out 2>&1 && break; sleep 0.3; done &&
    [ "$(cat $HR_DIR/rb.out)" = rebooted ]'
test_expect_success 'kill: the VPS ends as killed and its container is removed' '
    hakuriver.vps kill $ID && hr_wait_status $ID killed 20 &&
    for i in $(seq 1 100); do hr_docker GET /containers/hakuriver-vps-$ID/json | head -n 1 | grep -q 404 && break; sleep 0.1; done &&
    hr_docker GET /containers/hakuriver-vps-$ID/json | head -n 1 | grep -q 404 &&
    [ "$(proxy_says "AUTH $HR_TOKEN" $ID)" = "ERROR VPS task $ID is not active (status: killed)." ]'
test_expect_success 'an image without sshd or a package manager: failed with the reason, submit exits 1' '
    ! bad=$(vps_submit --image hakuriver-test/busybox:latest) && cat $HR_DIR/submit.err &&
    [ "$(hr_task_status $bad)" = failed ] &&
    hr_api GET /status/$bad | tail -n +2 | hr_json error_message | grep -q "no sshd" &&
    grep -q "no sshd" $HR_DIR/submit.err &&
    hr_docker GET /containers/hakuriver-vps-$bad/json | head -n 1 | grep -q 404'
test_expect_success 'bad input: an invalid key, no key, two targets, a command, container NULL' '
    ! hakuriver.vps submit --public-key-string "ssh-ed25519 not-base64!" --image $IMG 2> $HR_DIR/e.err &&
    grep -q "public-key-string" $HR_DIR/e.err &&
    ! hakuriver.vps submit --image $IMG 2> $HR_DIR/e.err && grep -q "no SSH public key" $HR_DIR/e.err &&
    { hakuriver.vps submit --public-key-file $KEY.pub --target n1 --target n1 2>/dev/null; [ $? = 2 ]; } &&
    { hakuriver.vps submit --public-key-file $KEY.pub sleep 1 2>/dev/null; [ $? = 2 ]; } &&
    hr_api POST /submit "{\"task_type\":\"vps\",\"command\":\"$(cat $KEY.pub)\",\"container_name\":\"NULL\"}" | head -n 1 | grep -q 422 &&
    hr_api POST /submit "{\"task_type\":\"vps\",\"command\":\"ssh-rsa AAAA\"}" | head -n 1 | grep -q 422 &&
    hr_api POST /submit "{\"task_type\":\"vps\",\"command\":\"$(cat $KEY.pub)\",\"arguments\":[\"x\"],\"image\":\"$IMG\"}" | head -n 1 | grep -q 422 &&
    hr_api POST /submit "{\"task_type\":\"vm\",\"command\":\"x\"}" | head -n 1 | grep -q 400'
test_expect_success 'several keys (strings) are all authorized' '
    id2=$(hakuriver.vps submit --image $IMG --public-key-string "$(cat $HR_DIR/otherkey.pub)" --public-key-string "$(cat $KEY.pub)" 2>&1 | sed -n "s/.*Created Task ID: \([0-9]*\).*/\1/p") &&
    hr_wait_status $id2 running 60 &&
    [ "$(via_proxy_command $id2 "echo first-key")" = first-key ] &&
    [ "$(ssh -i $HR_DIR/otherkey -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -o "ProxyCommand=hakuriver.ssh --proxy-command $id2" root@vps "echo second-key")" = second-key ] &&
    hakuriver.vps kill $id2 && hr_wait_status $id2 killed 20'
done_testing
