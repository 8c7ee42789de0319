#!/usr/bin/env bash
# scripts/openstack-down.sh [STATE_DIR] [--purge] — stop the services scripts/openstack-up.sh started.
#
# Stops exactly the pids in STATE_DIR/run/*.pid (default: $GOSTREE_OPENSTACK_STATE, else
# _build/openstack), never anything found by name. Each service was started with setsid, so its
# pid is its process group: TERM goes to that group (the service and what it forked, e.g. uwsgi's
# worker), then, after a bounded wait (15 s), KILL to whatever of that group is left. A pid whose
# command line no longer mentions STATE_DIR (a recycled pid) is left alone. --purge also removes
# STATE_DIR. Idempotent: with nothing running it just says so.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
purge=0
state=
for arg in "$@"; do
  case $arg in
    --purge) purge=1 ;;
    -*) echo "openstack-down: unknown option $arg" >&2; exit 2 ;;
    *) state=$arg ;;
  esac
done
STATE=${state:-${GOSTREE_OPENSTACK_STATE:-$root/_build/openstack}}
[ -d "$STATE" ] && STATE=$(cd "$STATE" && pwd)
RUN=$STATE/run
log() { printf '[openstack-down %s] %s\n' "$(date +%T)" "$*" >&2; }

members() { ps -eo pid=,pgid= | awk -v g="$1" '$2 == g { print $1 }'; } # pids in process group $1

declare -A group=()
if [ -d "$RUN" ]; then
  # heat stops first (it calls the others); then the services in reverse order of start.
  for name in heat swift-proxy swift-object swift-container swift-account glance keystone memcached; do
    f=$RUN/$name.pid
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$f"
      continue
    fi
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$STATE"; then
      log "pid $pid in $f is no longer $name from $STATE: left alone"
      rm -f "$f"
      continue
    fi
    group[$name]=$pid
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  done
fi
if [ ${#group[@]} -eq 0 ]; then
  log "nothing running from $STATE"
else
  for ((i = 0; i < 75; i++)); do # 15 s
    left=0
    for name in "${!group[@]}"; do [ -n "$(members "${group[$name]}")" ] && left=1; done
    [ $left = 0 ] && break
    sleep 0.2
  done
  for name in "${!group[@]}"; do
    rest=$(members "${group[$name]}")
    if [ -n "$rest" ]; then
      log "$name: still running 15 s after TERM, KILL $(echo $rest)"
      # shellcheck disable=SC2086
      kill -KILL $rest 2>/dev/null
    fi
    rm -f "$RUN/$name.pid"
    log "stopped $name (pid ${group[$name]})"
  done
fi
if [ $purge = 1 ] && [ -d "$STATE" ]; then
  rm -rf "$STATE"
  log "removed $STATE"
fi
exit 0
