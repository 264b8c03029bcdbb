#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (idempotent; quick
# when everything is there). Needs root for apt-get.
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v file >/dev/null 2>&1 || need+=(file)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)   # lifecycle: FIFREEZE on a loop-mounted ext4
command -v unshare >/dev/null 2>&1 || need+=(util-linux)  # lifecycle: envd as PID 1 in a new PID namespace
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if ((${#need[@]})); then
  echo "deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# VM tests (tests/vm): qemu and a stock kernel with its module tree. No
# recommends: they would pull qemu's GUI.
vm=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || vm+=(qemu-system-x86)
compgen -G '/boot/vmlinuz-*' >/dev/null || vm+=(linux-image-cloud-amd64)
if ((${#vm[@]})); then
  echo "deps: installing ${vm[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${vm[@]}" >/dev/null
fi
cd "$(dirname "$0")/../tests/sdk"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
