#!/bin/bash
# vps.sh - issue #5 benchmark: VPS start time and SSH proxy throughput, on a real host +
# runner (bench/cluster.sh), the real engine and the real OpenSSH client/server
# (image hakuriver-test/sshd:latest, scripts/build-vps-test-image.sh).
#
#   bench/vps.sh [BUILD_DIR]           (`make bench-vps`; needs root)
#
#   1. submit -> SSH login: `hakuriver.vps submit` (which returns when the VPS's sshd
#      answered) then `ssh -o ProxyCommand='hakuriver.ssh --proxy-command ID' true`, N times
#   2. throughput: BENCH_VPS_MB megabytes up (stdin -> `cat > /dev/null`) and down
#      (`head -c` -> stdout) over one SSH connection, direct to the container's published
#      port and through the host's proxy; same cipher both ways (aes128-gcm)
# Knobs: BENCH_VPS_N (5), BENCH_VPS_MB (300), BENCH_KEEP=1, BENCH_LOGS=DIR.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$HERE/../build}
BUILD=$(cd "$BUILD" && pwd) || { echo "vps.sh: no build dir $1" >&2; exit 1; }
N=${BENCH_VPS_N:-5}
MB=${BENCH_VPS_MB:-300}
IMAGE=hakuriver-test/sshd:latest

"$HERE/../scripts/build-vps-test-image.sh" >&2 || { echo "vps.sh: no sshd test image" >&2; exit 1; }
LOAD=/bin/true
. "$HERE/cluster.sh"
export HAKURIVER_CONFIG=$CONF PATH=$BUILD:$PATH HOME=$DIR
start_host || exit 1
start_runner || exit 1
ssh-keygen -q -t ed25519 -N '' -f "$DIR/key"
O=(-i "$DIR/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
   -o LogLevel=ERROR -c aes128-gcm@openssh.com)
ms () { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (b - a) * 1000}'; }
p50 () { sort -n | awk '{v[NR]=$1} END {printf "%s", v[int((NR+1)/2)]}'; }

echo "== submit -> running -> SSH login through the proxy, $N times" >&2
run_ms=() login_ms=()
for i in $(seq 1 "$N"); do
    t0=$(date +%s.%N)
    id=$(hakuriver.vps submit --image "$IMAGE" --public-key-file "$DIR/key.pub" 2>&1 >/dev/null |
         sed -n 's/.*Created Task ID: \([0-9]*\).*/\1/p')
    t1=$(date +%s.%N)
    ssh "${O[@]}" -o "ProxyCommand=hakuriver.ssh --proxy-command $id" root@vps true || BROKEN=1
    t2=$(date +%s.%N)
    run_ms+=("$(ms "$t0" "$t1")"); login_ms+=("$(ms "$t0" "$t2")")
    echo "   vps $id: running after $(ms "$t0" "$t1") ms, logged in after $(ms "$t0" "$t2") ms" >&2
    [ "$i" -lt "$N" ] && hakuriver.vps kill "$id" >/dev/null
done
RUN_P50=$(printf '%s\n' "${run_ms[@]}" | p50)
LOGIN_P50=$(printf '%s\n' "${login_ms[@]}" | p50)

PORT22=$(api "/status/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ssh_port"])')
echo "== throughput, $MB MB each way, VPS $id (published port $PORT22)" >&2
rate () { awk -v mb="$MB" -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", mb * 1.048576 / (b - a)}'; }
xfer () { # xfer up|down SSH-ARGS... -> MB/s
    local a b
    a=$(date +%s.%N)
    if [ "$1" = up ]; then
        head -c "${MB}M" /dev/zero | ssh "${@:2}" 'cat > /dev/null' || BROKEN=1
    else
        ssh "${@:2}" "head -c ${MB}m /dev/zero 2>/dev/null || head -c $((MB * 1048576)) /dev/zero" > /dev/null || BROKEN=1
    fi
    b=$(date +%s.%N)
    rate "$a" "$b"
}
DIRECT=(-p "$PORT22" "${O[@]}" root@127.0.0.1)
PROXY=("${O[@]}" -o "ProxyCommand=hakuriver.ssh --proxy-command $id" root@vps)
UP_DIRECT=$(xfer up "${DIRECT[@]}"); UP_PROXY=$(xfer up "${PROXY[@]}")
DOWN_DIRECT=$(xfer down "${DIRECT[@]}"); DOWN_PROXY=$(xfer down "${PROXY[@]}")
hakuriver.vps kill "$id" >/dev/null

echo
echo "VPS benchmark ($(nproc) cores, $N VPS, $MB MB transfers)"
printf '  submit -> running (sshd answers)   p50 %6s ms   (all: %s)\n' "$RUN_P50" "${run_ms[*]}"
printf '  submit -> SSH login done           p50 %6s ms   (all: %s)\n' "$LOGIN_P50" "${login_ms[*]}"
printf '  upload   direct %8s MB/s   through proxy %8s MB/s\n' "$UP_DIRECT" "$UP_PROXY"
printf '  download direct %8s MB/s   through proxy %8s MB/s\n' "$DOWN_DIRECT" "$DOWN_PROXY"
echo "vps_run_p50_ms=$RUN_P50 vps_login_p50_ms=$LOGIN_P50 up_direct=$UP_DIRECT up_proxy=$UP_PROXY down_direct=$DOWN_DIRECT down_proxy=$DOWN_PROXY broken=$BROKEN"
[ "$BROKEN" = 0 ]
