#!/usr/bin/env bash
# local-cluster.sh - builds HakuRiver-C and starts a working local cluster on this machine
# (one host + one runner), then runs a demo task.
#
#   sudo scripts/local-cluster.sh          install build deps, build, start, run the demo
#   sudo scripts/local-cluster.sh stop     stop the host and the runner
#
# Everything lives in ./local-cluster/ (config, database, shared dir, logs). The runner runs
# as root because it manages cgroups; tasks run as the user `nobody`.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
dir=$top/local-cluster
bin=$top/build

stop () {
    for f in "$dir"/host.pid "$dir"/runner.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}
if [ "${1:-}" = "stop" ]; then stop; echo "Local cluster stopped."; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
    echo "local-cluster.sh: the runner manages cgroups and must run as root (try: sudo $0)" >&2
    exit 1
fi

scripts/install-deps.sh
make -j"$(nproc)" all >/dev/null
stop
mkdir -p "$dir/shared" "$dir/local" "$dir/state"
chmod 755 "$dir"
export HAKURIVER_CONFIG=$dir/config.toml
if [ ! -f "$HAKURIVER_CONFIG" ]; then
    "$bin/hakuriver.init" config --output "$HAKURIVER_CONFIG" >/dev/null
    # point the generated config at this directory and loopback
    sed -i \
        -e "s|^shared_dir = .*|shared_dir = \"$dir/shared\"|" \
        -e "s|^local_temp_dir = .*|local_temp_dir = \"$dir/local\"|" \
        -e "s|^runner_state_dir = .*|runner_state_dir = \"$dir/state\"|" \
        -e "s|^db_file = .*|db_file = \"$dir/hakuriver.db\"|" \
        -e "s|^host_bind_ip = .*|host_bind_ip = \"127.0.0.1\"|" \
        -e "s|^runner_address = .*|runner_address = \"127.0.0.1\"|" \
        -e "s|^runner_user = .*|runner_user = \"nobody\"|" \
        "$HAKURIVER_CONFIG"
fi
setsid "$bin/hakuriver.host" --config "$HAKURIVER_CONFIG" >>"$dir/host.log" 2>&1 < /dev/null &
echo $! > "$dir/host.pid"
sleep 0.3
setsid "$bin/hakuriver.runner" --config "$HAKURIVER_CONFIG" >>"$dir/runner.log" 2>&1 < /dev/null &
echo $! > "$dir/runner.pid"

for _ in $(seq 1 100); do
    "$bin/hakuriver.client" nodes 2>/dev/null | grep -q online && break
    sleep 0.1
done
"$bin/hakuriver.client" nodes
echo
echo "Demo: hakuriver.task submit --container NULL --wait -- echo Hello from HakuRiver"
id=$("$bin/hakuriver.task" submit --container NULL --wait -- echo "Hello from HakuRiver" \
     | sed -n 's/^Submitted task \([0-9][0-9]*\).*/\1/p' | head -n 1)
"$bin/hakuriver.task" status "$id"
echo "--- stdout of task $id ---"
"$bin/hakuriver.task" stdout "$id"
cat <<MSG

The cluster keeps running. Use it with:
  export HAKURIVER_CONFIG=$HAKURIVER_CONFIG PATH=$bin:\$PATH
  hakuriver.client nodes
  hakuriver.task submit --container NULL --cores 1 -- sh -c 'echo hi; sleep 1'
Logs: $dir/host.log, $dir/runner.log.   Stop it: sudo scripts/local-cluster.sh stop
MSG
