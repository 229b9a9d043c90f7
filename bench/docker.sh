#!/bin/bash
# docker.sh - issue #3 benchmark: HakuRiver's Docker tasks against the same containers run
# without HakuRiver, in one run, on a real host + runner (bench/cluster.sh) and the real engine.
#
#   bench/docker.sh [BUILD_DIR]        (`make bench-docker`; needs root: starts dockerd if none)
#
#   1. `docker run --rm IMAGE true` with the docker CLI, one after another: latency, throughput
#   2. raw Engine API, one at a time: create-call -> the probe's first instruction (stamp)
#   3. HakuRiver, one at a time: submit -> the probe's first instruction (same probe, same image)
#      (2 and 3 take turns in BENCH_DOCKER_ROUNDS rounds: the engine's speed drifts)
#   4. raw Engine API makespan: N `true` containers, 2 at a time (create/start/wait/remove)
#   5. HakuRiver makespan: N `--image IMAGE --cores 1 -- true` tasks on one runner with 2 cores
# Targets: overhead (3 - 2) p50 <= 10 ms; makespan 5 within 15% of 4.
# Knobs: BENCH_DOCKER_TASKS (1000), BENCH_DOCKER_LAT_N (30), BENCH_DOCKER_ROUNDS (5),
# BENCH_DOCKER_CLI_N (20),
# BENCH_KEEP=1, BENCH_LOGS=DIR (as run.sh).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$HERE/../build}
BUILD=$(cd "$BUILD" && pwd) || { echo "docker.sh: no build dir $1" >&2; exit 1; }
N=${BENCH_DOCKER_TASKS:-1000}
LAT_N=${BENCH_DOCKER_LAT_N:-30}
ROUNDS=${BENCH_DOCKER_ROUNDS:-5}
CLI_N=${BENCH_DOCKER_CLI_N:-20}
IMAGE=hakuriver-test/busybox:latest

"$HERE/../scripts/docker-up.sh" >&2 || { echo "docker.sh: no Docker engine" >&2; exit 1; }
cc -O2 -std=gnu11 -Wall -D_GNU_SOURCE "$HERE/load.c" -lcurl -ljansson -lpthread \
    -o "$BUILD/hr-load" || exit 1
LOAD=$BUILD/hr-load
cc -O2 -std=gnu11 -Wall -D_GNU_SOURCE -I"$HERE/../src" "$HERE/docker_raw.c" "$BUILD/libcommon.a" \
    $(pkg-config --cflags --libs libcurl jansson) -lpthread -o "$BUILD/hr-docker-raw" || exit 1
RAW=$BUILD/hr-docker-raw

. "$HERE/cluster.sh"
SD=$DIR/shared/shared_data
mkdir -p "$SD/bin" "$SD/lat"
chmod 1777 "$SD/lat"
# the probe runs inside a busybox image without a C library: it must be static
cc -O2 -std=gnu11 -Wall -static "$HERE/stamp.c" -o "$SD/bin/hr-stamp" || exit 1
start_host || exit 1
start_runner || exit 1
sleep 1.5
echo "cluster: host pid $HOST_PID, runner pid $RUNNER_PID, port $PORT, dir $DIR" >&2

# ---- 1. docker run --rm with the CLI ---------------------------------------------------
echo "== docker run --rm $IMAGE true, $CLI_N times" >&2
t0=$(date +%s.%N)
lats=()
for i in $(seq 1 "$CLI_N"); do
    a=$(date +%s.%N); docker run --rm --network host "$IMAGE" true || BROKEN=1; b=$(date +%s.%N)
    lats+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.1f", (b - a) * 1000}')")
done
t1=$(date +%s.%N)
CLI_P50=$(printf '%s\n' "${lats[@]}" | sort -n | awk '{v[NR]=$1} END {printf "%.1f", v[int((NR+1)/2)]}')
CLI_RATE=$(awk -v n="$CLI_N" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", n / (b - a)}')
echo "   cli_p50_ms=$CLI_P50 cli_per_s=$CLI_RATE" >&2

# ---- 2./3. start latency, one at a time --------------------------------------------------
# The engine's own start time drifts by tens of milliseconds over a run (it was 169 ms p50 in
# one run and 216 ms in the next), more than the overhead measured. So raw and HakuRiver take
# turns: ROUNDS rounds of LAT_N/ROUNDS starts each, and the overhead is the median of the
# rounds' p50 differences (a paired comparison); the p50/p95 shown are medians over rounds.
# Both sides start one container every 2.5 s (HakuRiver's starts must not overlap the
# previous task's teardown; the raw side gets the same cadence, since an engine left idle
# between starts answers more slowly than one kept busy).
median () { sort -n | awk '{v[NR]=$1} END {printf "%.1f", (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
K=$(( LAT_N / ROUNDS )); [ "$K" -ge 5 ] || K=5
raw_p50s=() raw_p95s=() hr_p50s=() hr_p95s=() diffs=()
for round in $(seq 1 "$ROUNDS"); do
    step "raw-latency round $round" "$RAW" serial -n "$K" -s 2500 -i "$IMAGE" -b "$SD" \
        -H /shared/bin/hr-stamp -D /shared/lat
    rp=$(kv start_p50_ms "$OUT"); raw_p50s+=("$rp"); raw_p95s+=("$(kv start_p95_ms "$OUT")")
    step "hr-latency round $round" "$LOAD" latency --url "$URL" --token "$TOKEN" -n "$K" -s 2500 \
        -C 1 --image "$IMAGE" -D "$SD/lat" -H unused --task-helper /shared/bin/hr-stamp \
        --task-dir /shared/lat
    hp=$(kv p50_ms "$OUT"); hr_p50s+=("$hp"); hr_p95s+=("$(kv p95_ms "$OUT")")
    diffs+=("$(awk -v a="$hp" -v b="$rp" 'BEGIN {printf "%.1f", a - b}')")
    drain 120
done
echo "   overhead per round (HakuRiver p50 - raw p50, ms): ${diffs[*]}" >&2

# ---- 4./5. makespan ---------------------------------------------------------------------
step raw-makespan "$RAW" makespan -n "$N" -c 2 -i "$IMAGE" -b "$SD"
RAW_MS=$OUT
step hr-makespan "$LOAD" makespan --url "$URL" --token "$TOKEN" -n "$N" -C 1 --image "$IMAGE" \
    -d 3600
HR_MS=$OUT

raw_p50=$(printf '%s\n' "${raw_p50s[@]}" | median); hr_p50=$(printf '%s\n' "${hr_p50s[@]}" | median)
raw_p95=$(printf '%s\n' "${raw_p95s[@]}" | median); hr_p95=$(printf '%s\n' "${hr_p95s[@]}" | median)
raw_ms=$(kv makespan_s "$RAW_MS"); hr_ms=$(kv makespan_s "$HR_MS")
over=$(printf '%s\n' "${diffs[@]}" | median)
ratio=$(awk -v a="$hr_ms" -v b="$raw_ms" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
verdict () { awk -v x="$1" -v lim="$2" 'BEGIN {print (x <= lim ? "PASS" : "MISS")}'; }
printf '\n%-58s %12s %10s %s\n' "benchmark (image $IMAGE)" measured target verdict
printf '%-58s %12s %10s\n' "docker run --rm (CLI), p50 latency ms / per s" "$CLI_P50 / $CLI_RATE" "-"
printf '%-58s %12s %10s\n' "raw API create -> process start, p50 / p95 ms" \
    "$raw_p50 / $raw_p95" "-"
printf '%-58s %12s %10s\n' "HakuRiver submit -> process start, p50 / p95 ms" \
    "$hr_p50 / $hr_p95" "-"
printf '%-58s %12s %10s %s\n' "HakuRiver overhead over raw, p50 ms ($ROUNDS rounds)" "$over" \
    "<= 10" "$(verdict "$over" 10)"
printf '%-58s %12s %10s\n' "raw API makespan, $N containers, 2 at a time, s" "$raw_ms" "-"
printf '%-58s %12s %10s\n' "HakuRiver makespan, $N tasks, 1 core each on 2 cores, s" "$hr_ms" "-"
printf '%-58s %12s %10s %s\n' "HakuRiver / raw makespan" "$ratio" "<= 1.15" \
    "$(verdict "$ratio" 1.15)"
exit $BROKEN
