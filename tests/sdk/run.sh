#!/usr/bin/env bash
# Run the E2B JS SDK tests against an envd binary, isolated in a fresh network
# namespace that has only a loopback interface (no traffic can leave it).
#
# Usage: tests/sdk/run.sh /path/to/envd-binary [extra envd flags...]
#
# Env passed through to the tests: ENVD_ACCESS_TOKEN (optional token, see
# README.md), ENVD_SDK_STRICT=1 (pending tests count as real failures).
# Needs root (ip netns), iproute2, curl, node and npm.
set -euo pipefail

PORT=49983
SDK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "run.sh: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: $0 /path/to/envd-binary [extra envd flags...]"
ENVD_BIN="$1"; shift
[ -f "$ENVD_BIN" ] && [ -x "$ENVD_BIN" ] || die "envd binary '$ENVD_BIN' does not exist or is not executable"
ENVD_BIN="$(cd "$(dirname "$ENVD_BIN")" && pwd)/$(basename "$ENVD_BIN")"

command -v ip >/dev/null 2>&1 || die "'ip' not found: install iproute2 (apt-get install -y iproute2)"
command -v curl >/dev/null 2>&1 || die "'curl' not found: install curl (apt-get install -y curl)"
command -v node >/dev/null 2>&1 || die "'node' not found: Node.js 20 or later is needed"
command -v npm >/dev/null 2>&1 || die "'npm' not found: Node.js 20 or later (with npm) is needed"
[ "$(id -u)" -eq 0 ] || die "must run as root (creating a network namespace needs it)"

if [ ! -d "$SDK_DIR/node_modules" ]; then
  echo "run.sh: installing SDK test dependencies (npm ci)" >&2
  (cd "$SDK_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci failed in $SDK_DIR"
fi

NS="envd-sdk-$$"
ENVD_PID=""
NS_CREATED=""
LOG_DIR="$(mktemp -d -t envd-sdk-run.XXXXXX)"
ENVD_LOG="$LOG_DIR/envd.log"

cleanup() {
  local rc=$?
  set +e
  if [ -n "$ENVD_PID" ] && kill -0 "$ENVD_PID" 2>/dev/null; then
    kill -TERM "$ENVD_PID" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$ENVD_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$ENVD_PID" 2>/dev/null && kill -KILL "$ENVD_PID" 2>/dev/null
    wait "$ENVD_PID" 2>/dev/null
  fi
  if [ -n "$NS_CREATED" ]; then
    # Processes envd spawned for the tests may still live in the namespace:
    # end them by PID (only this namespace's, all started by this run).
    for pid in $(ip netns pids "$NS" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null
    done
    ip netns del "$NS" 2>/dev/null || echo "run.sh: could not delete netns $NS" >&2
  fi
  rm -rf "$LOG_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
  echo "---- envd output (last 50 lines) ----" >&2
  tail -n 50 "$ENVD_LOG" >&2 || true
  echo "-------------------------------------" >&2
}

ip netns add "$NS" || die "could not create network namespace $NS"
NS_CREATED=1
ip netns exec "$NS" ip link set lo up

# envd and the tests run with a fresh, empty tmpfs over /root (a private
# mount namespace): the SDK runs root's commands as login shells, and
# this machine's root dotfiles (pyenv's rehash lock) must neither be tested
# nor be left locked when a test kills a shell mid-start-up.
# 'ip netns exec', unshare (no --fork) and the shell all exec, so $! below
# is envd's own PID.
fresh_root() {
  exec ip netns exec "$NS" unshare --mount --propagation private \
    sh -c 'mount -t tmpfs -o mode=0700,size=256m envd-sdk-root /root && exec "$@"' sh "$@"
}
fresh_root "$ENVD_BIN" --isnotfc --port "$PORT" "$@" >"$ENVD_LOG" 2>&1 &
ENVD_PID=$!

# Wait (about 10 s at most) for GET /health to answer 200 or 204.
ready=""
code=""
deadline=$((SECONDS + 10))
while [ "$SECONDS" -lt "$deadline" ]; do
  if ! kill -0 "$ENVD_PID" 2>/dev/null; then
    envd_rc=0; wait "$ENVD_PID" || envd_rc=$?; ENVD_PID=""
    echo "run.sh: envd exited (status $envd_rc) before becoming healthy" >&2
    show_log
    exit 1
  fi
  code="$(ip netns exec "$NS" curl -s -o /dev/null -w '%{http_code}' \
            --connect-timeout 0.5 --max-time 1 "http://127.0.0.1:$PORT/health" || true)"
  if [ "$code" = "200" ] || [ "$code" = "204" ]; then ready=1; break; fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "run.sh: envd did not answer GET /health with 200/204 within ~10 s (last status: ${code:-none})" >&2
  show_log
  exit 1
fi

set +e
# The tests share envd's mount namespace: they check files envd wrote in ~.
nsenter --net="/var/run/netns/$NS" --mount="/proc/$ENVD_PID/ns/mnt" \
  env E2B_DEBUG=true NPM_CONFIG_UPDATE_NOTIFIER=false npm test --prefix "$SDK_DIR"
status=$?
set -e

if [ "$status" -ne 0 ]; then show_log; fi
exit "$status"
