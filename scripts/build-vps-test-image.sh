#!/usr/bin/env bash
# build-vps-test-image.sh - builds the local test image hakuriver-test/sshd:latest for the VPS
# tests: a root file system assembled from this (Debian) machine's own binaries - busybox-static
# with its applet links in /bin, /usr/sbin/sshd, /usr/bin/ssh-keygen and the shared libraries
# they need (ldd, dynamic loader included) - imported with `docker import` (no registry needed).
# Installs openssh-server/openssh-client/busybox-static when missing and starts the engine with
# scripts/docker-up.sh when its socket does not answer. Does nothing when the image exists,
# unless --force. Needs root. Engine socket: ${DOCKER_SOCK:-/var/run/docker.sock}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
IMAGE=hakuriver-test/sshd:latest
force=0
case "${1:-}" in
    "") ;;
    --force) force=1 ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

ping_engine () { curl -fsS --max-time 3 --unix-socket "$SOCK" http://docker/_ping >/dev/null 2>&1; }
image_id () { # prints the image's id, or nothing when the engine does not have it
    curl -fsS --unix-socket "$SOCK" "http://docker/images/hakuriver-test%2Fsshd:latest/json" 2>/dev/null |
        grep -o '"Id":"[^"]*"' | head -n 1 | cut -d'"' -f4 || true
}
ping_engine || "$HERE/docker-up.sh"
# Test files that run at the same time build it once.
exec 9>"${TMPDIR:-/tmp}/hakuriver-build-vps-test-image.lock"
flock 9
old=$(image_id)
if [ -n "$old" ] && [ $force -eq 0 ]; then
    exit 0
fi

want=(openssh-server openssh-client busybox-static)
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    # On a machine with systemd, installing openssh-server also enables and starts the
    # machine's own sshd; the image only needs its files.
    echo "build-vps-test-image: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/ssh,root,run/sshd,var/log,var/empty,tmp,shared,local_temp,dev,proc,sys}
ln -s ../run "$root/var/run"
chmod 700 "$root/root"
chmod 1777 "$root/tmp"
chmod 755 "$root/run/sshd"
# Login records sshd writes (without them: "Couldn't stat /var/log/lastlog" on each tty login).
touch "$root/var/log/lastlog" "$root/var/log/wtmp" "$root/run/utmp"

cp /bin/busybox "$root/bin/busybox"
for c in $("$root/bin/busybox" --list); do
    [ "$c" = busybox ] || ln -s busybox "$root/bin/$c"
done
cp /usr/sbin/sshd "$root/usr/sbin/sshd"
cp /usr/bin/ssh-keygen "$root/usr/bin/ssh-keygen"

# Every library the two binaries load, at the path ldd names (e.g. /lib/x86_64-linux-gnu/...,
# /lib64/ld-linux-x86-64.so.2: the loader's default directories without an ld.so.cache), as
# plain files. glibc >= 2.34 has the "files" NSS module built in, so nothing is dlopen'ed for
# /etc/passwd; libgcc_s is the one library glibc may dlopen (thread cancellation, backtraces).
libs=$(ldd /usr/sbin/sshd /usr/bin/ssh-keygen | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && NF > 1 { print $1 }' | sort -u)
libdir=$(dirname "$(printf '%s\n' "$libs" | grep '/libc\.so\.6$')")
[ ! -e "$libdir/libgcc_s.so.1" ] || libs="$libs $libdir/libgcc_s.so.1"
for l in $libs; do
    mkdir -p "$root$(dirname "$l")"
    cp -L "$l" "$root$l"
done

cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534:sshd privilege separation:/run/sshd:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
# "*": no password, but not locked ("!"): without PAM, sshd refuses locked accounts even for
# key authentication.
cat > "$root/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
sshd:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
chmod 640 "$root/etc/shadow"
cat > "$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat > "$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
shadow: files
hosts: files dns
EOF

tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
    docker -H "unix://$SOCK" import -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' - "$IMAGE" >/dev/null
new=$(image_id)
if [ -n "$old" ] && [ "$old" != "$new" ]; then
    # The replaced image, unless a container still uses it.
    curl -fsS -X DELETE --unix-socket "$SOCK" "http://docker/images/$old" >/dev/null 2>&1 || true
fi
echo "build-vps-test-image: built $IMAGE"
