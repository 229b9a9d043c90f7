#!/usr/bin/env bash
# docker-up.sh - makes a Docker engine available for the Docker tests: installs docker.io
# (and busybox-static) when missing, starts dockerd when none answers, and builds the local
# test image hakuriver-test/busybox:latest from busybox-static with `docker import` (no
# registry is needed). Safe to run again. Needs root.
set -euo pipefail
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
want=(docker.io busybox-static)
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "docker-up: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
ping_engine () { curl -fsS --max-time 3 --unix-socket "$SOCK" http://docker/_ping >/dev/null 2>&1; }
if ! ping_engine; then
    echo "docker-up: starting dockerd (log: /var/log/hakuriver-dockerd.log)"
    # Without systemd: run it detached; it keeps running for later test runs.
    setsid dockerd >>/var/log/hakuriver-dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do ping_engine && break; sleep 0.5; done
    ping_engine || { echo "docker-up: dockerd did not come up; see /var/log/hakuriver-dockerd.log" >&2
                     tail -n 20 /var/log/hakuriver-dockerd.log >&2; exit 1; }
fi
IMAGE=hakuriver-test/busybox:latest
if ! curl -fsS --unix-socket "$SOCK" "http://docker/images/hakuriver-test%2Fbusybox:latest/json" >/dev/null 2>&1; then
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root" "$root/shared" "$root/local_temp"
    cp /bin/busybox "$root/bin/busybox"
    for c in $("$root/bin/busybox" --list); do
        [ "$c" = busybox ] || ln -s busybox "$root/bin/$c"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
    echo 'root:x:0:' > "$root/etc/group"
    chmod 1777 "$root/tmp"
    tar -C "$root" -c . | docker -H "unix://$SOCK" import -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
    rm -rf "$root"
    echo "docker-up: built $IMAGE"
fi
