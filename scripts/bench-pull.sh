#!/usr/bin/env bash
# scripts/bench-pull.sh — time `gostree pull` against `ostree pull` over HTTP on the same trees.
#
# One archive repository is made with ostree from _build/trees (branch v1 = tree-v1, branch main
# = tree-v2 with v1 as parent, a summary, no static deltas) and served by one nginx on 127.0.0.1
# (2 workers, its own prefix and config in _build/bench-pull). Then, ROUNDS times (default 5), for
# each tool (ostree first in odd rounds, gostree first in even ones), into a fresh bare repository:
#   p1  full pull of v1 (archive -> bare, every object)
#   p2  incremental pull of main (v1 -> v2: only the new objects)
#   p3  (once, RTT_MS=50 by default, 0 to skip) p1 through internal/tools/latencyproxy, which adds
#       RTT_MS of round-trip time in front of the same nginx
# Both tools use their defaults (gostree: 16 objects in flight; ostree: its own scheduler).
# Nothing is deleted between measured steps. Each round (and p3) starts from the same state
# (scripts/bench-lib.sh: caches dropped, the served repository read once; a 61 s wait after an
# earlier run's results are deleted). After each pull the result is checked (ostree fsck on round 1, same commit as the server);
# the table gives the best and the median time of the rounds and the largest peak RSS (/usr/bin/time %M).
# Pulls through static deltas are measured by scripts/bench-delta.sh (scripts/bench-delta-pull.sh).
# Goals (issue 3): gostree/ostree <= 0.5 for both, peak RSS <= 64 MB.
#
# Output: a markdown table on stdout and in _build/bench-pull/results.md.
# Environment: TREES (default _build/trees), OSTREE, GOSTREE (default: build bin/gostree), ROUNDS,
# BENCH_KEEP=1 keeps the repositories, BENCH_FSYNC=0 sets core.fsync=false in both destination
# repositories (takes the disk out of the comparison on a machine shared with other I/O). Needs root (bare repositories keep ownership) and nginx.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi

trees=${TREES:-$root/_build/trees}
work=$root/_build/bench-pull
OSTREE=${OSTREE:-ostree}
ROUNDS=${ROUNDS:-5}
build_gostree=0
if [ -z "${GOSTREE:-}" ]; then GOSTREE=$root/bin/gostree; build_gostree=1; fi

log() { printf 'bench-pull: %s\n' "$*" >&2; }
die() { printf 'bench-pull: error: %s\n' "$*" >&2; exit 1; }

command -v "$OSTREE" >/dev/null || die "ostree not found: run scripts/deps.sh"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found: run scripts/deps.sh"
[ -x /usr/bin/time ] || die "/usr/bin/time not found: run scripts/deps.sh"
[ "$(id -u)" -eq 0 ] || die "must run as root"
if [ "$build_gostree" = 1 ]; then
  log "building $GOSTREE"
  go build -o "$GOSTREE" ./cmd/gostree
fi
bash scripts/make-trees.sh "$trees" >&2

. scripts/bench-lib.sh
rm -rf "$work"
bench_settle # whatever ran before may have deleted files (an earlier run, another bench)
mkdir -p "$work/www" "$work/nginx"
served=$work/www/repo

log "making the served archive repository with ostree (v1, then v2)"
"$OSTREE" --repo="$served" init --mode=archive
flags=(--owner-uid=0 --owner-gid=0 "--timestamp=2020-01-01 00:00:00 +0000")
c1=$("$OSTREE" --repo="$served" commit "${flags[@]}" -s v1 -b v1 --tree=dir="$trees/tree-v1")
c2=$("$OSTREE" --repo="$served" commit "${flags[@]}" -s v2 -b main --parent="$c1" --tree=dir="$trees/tree-v2")
"$OSTREE" --repo="$served" summary -u
nobj=$(find "$served/objects" -type f | wc -l)
log "served: v1 $c1, v2 $c2, $nobj objects, $(du -sh "$served" | cut -f1)"

bench_nginx "$work" repo/config || exit 1
url=$bench_base/repo
# Warm the page cache with the served files.
tar -C "$served" -cf - . | cat >/dev/null

tool_cmd() { case $1 in ostree) cmd=("$OSTREE") ;; gostree) cmd=("$GOSTREE") ;; esac; }

# measure STEP TOOL CMD...: run CMD once; write "wall user sys maxrss_kb" to $work/STEP-TOOL-rN.time.
measure() {
  local step=$1 tool=$2; shift 2
  local base=$work/$step-$tool-r$round rc=0
  printf '%s\n' "$*" >"$base.cmd"
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$base.time" "$@" >"$base.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo FAIL >"$base.time"
    log "$step $tool FAILED (exit $rc): $*"
    tail -n 20 "$base.log" | sed 's/^/    /' >&2
    return 0
  fi
  log "round $round: $step $tool: $(awk '{print $1 " s, " int($4/1024) " MB"}' "$base.time")"
}

declare -A check
status=0
fresh_state() { bench_fresh "$served"; }
for round in $(seq 1 "$ROUNDS"); do
  fresh_state
  if [ $((round % 2)) = 1 ]; then tools="ostree gostree"; else tools="gostree ostree"; fi
  for tool in $tools; do
    tool_cmd $tool
    r=$work/r$round-$tool
    "${cmd[@]}" --repo="$r" init --mode=bare >/dev/null
    "${cmd[@]}" --repo="$r" remote add --no-gpg-verify origin "$url" >/dev/null
    if [ "${BENCH_FSYNC:-1}" = 0 ]; then "$OSTREE" --repo="$r" config set core.fsync false; fi
    measure p1 $tool "${cmd[@]}" --repo="$r" pull origin v1
    measure p2 $tool "${cmd[@]}" --repo="$r" pull origin main
    got1=$(cat "$r/refs/remotes/origin/v1" 2>/dev/null || echo -)
    got2=$(cat "$r/refs/remotes/origin/main" 2>/dev/null || echo -)
    if [ "$got1" != "$c1" ] || [ "$got2" != "$c2" ]; then
      check[$tool]="WRONG COMMITS"; status=1
    elif [ "$round" = 1 ]; then
      if "$OSTREE" --repo="$r" fsck >"$work/fsck-$tool.log" 2>&1; then
        check[$tool]="ostree fsck ok"
      else
        check[$tool]="ostree fsck FAILED"; status=1
      fi
    fi
  done
done
# p3: the full pull of v1 again, through a userspace latency proxy adding RTT_MS of round-trip
# time in front of the same nginx (this kernel has no netem). One round: it is slow for ostree.
RTT_MS=${RTT_MS:-50}
if [ "$RTT_MS" != 0 ]; then
  go build -o "$work/latencyproxy" ./internal/tools/latencyproxy
  hostport=${url#http://}; hostport=${hostport%%/*}
  coproc PROXY { exec "$work/latencyproxy" -listen 127.0.0.1:0 -to "$hostport" -delay "$((RTT_MS / 2))ms"; }
  proxy_pid=$PROXY_PID
  read -r proxy_addr <&"${PROXY[0]}"
  trap 'kill "$proxy_pid" 2>/dev/null || true; if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi' EXIT
  log "latency proxy on $proxy_addr: ${RTT_MS} ms round trip"
  round=1
  fresh_state
  for tool in ostree gostree; do
    tool_cmd $tool
    r=$work/rtt-$tool
    "${cmd[@]}" --repo="$r" init --mode=bare >/dev/null
    "${cmd[@]}" --repo="$r" remote add --no-gpg-verify origin "http://$proxy_addr/repo" >/dev/null
    if [ "${BENCH_FSYNC:-1}" = 0 ]; then "$OSTREE" --repo="$r" config set core.fsync false; fi
    measure p3 $tool "${cmd[@]}" --repo="$r" pull --disable-static-deltas origin v1
    got=$(cat "$r/refs/remotes/origin/v1" 2>/dev/null || echo -)
    [ "$got" = "$c1" ] || { check[$tool]="WRONG COMMIT through the proxy"; status=1; }
  done
  kill "$proxy_pid" 2>/dev/null || true
fi

# Deleted only now: freeing blocks in the background would slow the next measured step.
if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$work"/r[0-9]*-* "$work"/rtt-*; fi

field() { # field STEP TOOL N: best wall (N=1), median wall (N=m) or largest maxrss (N=4) over the rounds, or FAIL
  local f
  for f in "$work/$1-$2"-r*.time; do
    if [ ! -s "$f" ] || grep -q FAIL "$f"; then echo FAIL; return; fi
  done
  if [ "$3" = m ]; then
    cat "$work/$1-$2"-r*.time | awk '{ v[NR] = $1 } END {
      c = NR; for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      if (c % 2) print v[(c + 1) / 2]; else printf "%.2f\n", (v[c / 2] + v[c / 2 + 1]) / 2 }'
    return
  fi
  cat "$work/$1-$2"-r*.time | awk -v n="$3" 'NR == 1 || (n == 1 && $n < best) || (n != 1 && $n > best) { best = $n } END { print best }'
}
mb() { case $1 in FAIL|-) echo "-" ;; *) awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }' ;; esac; }
declare -A label=(
  [p1]="full pull tree-v1, archive -> bare, nginx on 127.0.0.1"
  [p2]="incremental pull v1 -> v2 (object-wise)"
  [p3]="full pull tree-v1 with ${RTT_MS} ms RTT (latency proxy), deltas disabled, 1 round"
)
{
  echo "| step | operation | ostree s (best of $ROUNDS) | gostree s (best of $ROUNDS) | gostree/ostree (goal <= 0.5) | medians ostree / gostree s (ratio) | peak RSS ostree / gostree MB (goal <= 64) |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  steps=(p1 p2)
  if [ "$RTT_MS" != 0 ]; then steps+=(p3); fi
  for step in "${steps[@]}"; do
    o=$(field $step ostree 1); g=$(field $step gostree 1)
    om=$(field $step ostree 4); gm=$(field $step gostree 4)
    ratio=-
    if [ "$o" != FAIL ] && [ "$g" != FAIL ]; then
      ratio=$(awk -v g="$g" -v o="$o" 'BEGIN { if (o > 0) printf "%.2f", g / o; else print "-" }')
    fi
    omed=$(field $step ostree m); gmed=$(field $step gostree m)
    mratio=-
    if [ "$omed" != FAIL ] && [ "$gmed" != FAIL ]; then
      mratio=$(awk -v g="$gmed" -v o="$omed" 'BEGIN { if (o > 0) printf "%.2f", g / o; else print "-" }')
    fi
    echo "| $step | ${label[$step]} | $o | $g | $ratio | $omed / $gmed ($mratio) | $(mb "$om") / $(mb "$gm") |"
  done
} | tee "$work/results.md"
echo
echo "checks: ostree: ${check[ostree]:-}; gostree: ${check[gostree]:-}; served: $nobj objects; $(nproc) cores"
if grep -qs FAIL "$work"/p?-*.time; then status=1; fi
exit "$status"
