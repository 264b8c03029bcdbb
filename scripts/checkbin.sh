#!/usr/bin/env bash
# Asserts the built binary is static and stripped, and prints its size.
set -euo pipefail
bin=${1:-bin/envd}
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"*) ;;
  *) echo "checkbin: $bin is not statically linked: $desc" >&2; exit 1 ;;
esac
case "$desc" in
  *"not stripped"*) echo "checkbin: $bin is not stripped: $desc" >&2; exit 1 ;;
esac
size=$(stat -c %s "$bin")
mib=$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')
mb=$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1000000 }')
echo "checkbin: $bin static, stripped, $size bytes ($mib MiB, $mb MB)"
