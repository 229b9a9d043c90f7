#!/usr/bin/env bash
# install-deps.sh - installs the Debian/Ubuntu packages needed to build (and, with --test,
# to test) HakuRiver-C. Safe to run again: installs only what is missing.
set -euo pipefail
want=(build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
      libsqlite3-dev libnuma-dev curl)
if [ "${1:-}" = "--test" ]; then
    # openssh-*: the VPS tests use the real ssh/scp client, and scripts/build-vps-test-image.sh
    # copies sshd and ssh-keygen into the test image; rsync: t0710 copies a tree through
    # hakuriver.ssh --proxy-command with it.
    want+=(perl python3 sqlite3 procps valgrind numactl util-linux openssh-client openssh-server
           rsync)
fi
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "Installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
