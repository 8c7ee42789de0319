#!/usr/bin/env bash
# scripts/bench-compare.sh — time gostree against the real ostree on the same Debian trees.
#
# Steps, run ROUNDS times (default 5) per tool, ostree first in odd rounds and gostree first in
# even ones, with identical flags; the table reports the fastest round and the medians (this
# machine's disk and memory reclaim are noisy: single runs vary by 2x), and every round's
# figures are kept in _build/bench/*.time.
# Each round starts from the same state (scripts/bench-lib.sh: caches dropped; after the results
# of an earlier run are deleted, a 61 s wait, as file creation on this machine's root filesystem
# is slow for a minute after deletions).
# Before each commit the input tree is read once (tar to a pipe) so both tools start from a
# warm page cache. The cache is not dropped, but `sync` runs before every measured command.
# Both tools must produce the same commit checksums (content addressing): steps a, b and c
# print MATCH or MISMATCH, and the script exits 1 on a mismatch or a failed step.
#
# Output: a markdown table on stdout and in _build/bench/results.md; per-step logs in _build/bench.
# _build/bench is removed at the start of every run; repos and checkouts are deleted at the end
# unless BENCH_KEEP=1. Environment: TREES (default _build/trees), OSTREE, GOSTREE (set it to
# skip building bin/gostree, e.g. GOSTREE=ostree to check the script itself).
# Needs root (make-trees.sh, bare repos keep ownership). Reference numbers: shared/bench/baselines.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi

trees=${TREES:-$root/_build/trees}
work=$root/_build/bench
OSTREE=${OSTREE:-ostree}
build_gostree=0
if [ -z "${GOSTREE:-}" ]; then GOSTREE=$root/bin/gostree; build_gostree=1; fi
ts='2020-01-01 00:00:00 +0000'
commit_flags=(--owner-uid=0 --owner-gid=0 "--timestamp=$ts" -s bench)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

command -v "$OSTREE" >/dev/null || die "ostree not found: run scripts/deps.sh"
[ "$(id -u)" -eq 0 ] || die "must run as root"

if [ "$build_gostree" = 1 ]; then
  log "building $GOSTREE"
  go build -o "$GOSTREE" ./cmd/gostree
fi
command -v "$GOSTREE" >/dev/null || die "gostree not found at $GOSTREE"
bash scripts/make-trees.sh "$trees" >&2
v1=$trees/tree-v1
v2=$trees/tree-v2

. scripts/bench-lib.sh
rm -rf "$work"
bench_settle # whatever ran before may have deleted files (an earlier run, another bench)
mkdir -p "$work"

# warm TREE: read every file once. (Not `tar cf /dev/null`: GNU tar skips file data then.)
warm() { tar -C "$1" -cf - . | cat >/dev/null; }

# measure STEP TOOL CMD...: run CMD once; write "wall user sys maxrss_kb" to $work/STEP-TOOL.time.
measure() {
  local step=$1 tool=$2; shift 2
  local base=$work/$step-$tool-r$round rc=0
  printf '%s\n' "$*" >"$base.cmd"
  sync # start with no dirty pages left over from the previous step
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%e %U %S %M' -o "$base.time" "$@" >"$base.log" 2>&1 || rc=$?
  else
    local TIMEFORMAT='%R %U %S -'
    { time "$@" >"$base.log" 2>&1 || rc=$?; } 2>"$base.time"
  fi
  if [ "$rc" -ne 0 ]; then
    echo "FAIL" >"$base.time"
    log "$step $tool FAILED (exit $rc): $*"
    tail -n 20 "$base.log" | sed 's/^/    /' >&2
    return 0
  fi
  log "round $round: $step $tool: $(awk '{print $1 " s"}' "$base.time")"
}

# tool_cmd TOOL: the command for TOOL as an array in $cmd.
tool_cmd() { case $1 in ostree) cmd=("$OSTREE") ;; gostree) cmd=("$GOSTREE") ;; esac; }

ref() { cat "$1/refs/heads/$2" 2>/dev/null || echo "-"; }

declare -A check
ROUNDS=${ROUNDS:-5}
for round in $(seq 1 "$ROUNDS"); do
  rw=$work/r$round
  for tool in ostree gostree; do mkdir -p "$rw/$tool"; done
  bench_fresh
  if [ $((round % 2)) = 1 ]; then tools="ostree gostree"; else tools="gostree ostree"; fi

  # a: commit v1 into a fresh archive repo
  warm "$v1"
  for tool in $tools; do
    tool_cmd $tool; r=$rw/$tool/archive
    "${cmd[@]}" --repo="$r" init --mode=archive >"$rw/init-archive-$tool.log" 2>&1 || log "init archive ($tool) failed"
    measure a $tool "${cmd[@]}" --repo="$r" commit "${commit_flags[@]}" -b v1 --tree=dir="$v1"
  done
  # b: commit v2 into the same archive repo
  warm "$v2"
  for tool in $tools; do
    tool_cmd $tool; r=$rw/$tool/archive
    measure b $tool "${cmd[@]}" --repo="$r" commit "${commit_flags[@]}" -b v2 --tree=dir="$v2"
  done
  # c: commit v1 into a fresh bare repo
  warm "$v1"
  for tool in $tools; do
    tool_cmd $tool; r=$rw/$tool/bare
    "${cmd[@]}" --repo="$r" init --mode=bare >"$rw/init-bare-$tool.log" 2>&1 || log "init bare ($tool) failed"
    measure c $tool "${cmd[@]}" --repo="$r" commit "${commit_flags[@]}" -b v1 --tree=dir="$v1"
  done
  # d: fsck the bare repo
  for tool in $tools; do
    tool_cmd $tool
    measure d $tool "${cmd[@]}" --repo="$rw/$tool/bare" fsck
  done
  # e: checkout -H from the bare repo
  for tool in $tools; do
    tool_cmd $tool
    measure e $tool "${cmd[@]}" --repo="$rw/$tool/bare" checkout -H v1 "$rw/$tool/co-hardlink"
  done
  # f: checkout (copy) from the archive repo
  for tool in $tools; do
    tool_cmd $tool
    measure f $tool "${cmd[@]}" --repo="$rw/$tool/archive" checkout v1 "$rw/$tool/co-archive"
  done
done

# Same commits? Compare the refs both tools wrote.
status=0
for s in a:archive:v1 b:archive:v2 c:bare:v1; do
  IFS=: read -r step repo branch <<<"$s"
  o=$(ref "$work/r1/ostree/$repo" "$branch"); g=$(ref "$work/r1/gostree/$repo" "$branch")
  if [ "$o" != - ] && [ "$o" = "$g" ]; then
    check[$step]="MATCH ${o:0:12}"
  else
    check[$step]="MISMATCH ostree ${o:0:12} gostree ${g:0:12}"; status=1
  fi
  log "$step: ${check[$step]}"
done

field() { # field STEP TOOL N: the smallest (N=1, wall) or largest (N=4, maxrss) Nth number over the rounds, or FAIL
  local f
  for f in "$work/$1-$2"-r*.time; do
    if [ ! -s "$f" ] || grep -q FAIL "$f"; then echo FAIL; return; fi
  done
  cat "$work/$1-$2"-r*.time | awk -v n="$3" 'NR == 1 || (n == 1 && $n < best) || (n != 1 && $n > best) { best = $n } END { print best }'
}

median() { # median STEP TOOL: the median wall time over the rounds, or FAIL
  local f
  for f in "$work/$1-$2"-r*.time; do
    if [ ! -s "$f" ] || grep -q FAIL "$f"; then echo FAIL; return; fi
  done
  cat "$work/$1-$2"-r*.time | awk '{print $1}' | sort -n | awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { # ratio G O
  case "$1$2" in *FAIL*) echo - ;; *) awk -v g="$1" -v o="$2" 'BEGIN { if (o > 0) printf "%.2f", g / o; else print "-" }' ;; esac
}

mb() { case $1 in FAIL|-) echo "-" ;; *) awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }' ;; esac; }
declare -A label=(
  [a]="commit tree-v1 into fresh archive repo"
  [b]="commit tree-v2 into same archive repo"
  [c]="commit tree-v1 into fresh bare repo"
  [d]="fsck bare repo (v1)"
  [e]="checkout -H v1 from bare repo"
  [f]="checkout v1 (copy) from archive repo"
)
{
  echo "| step | operation | ostree s best / median of $ROUNDS | gostree s best / median | gostree/ostree best (median) | maxrss ostree / gostree (MB) | check |"
  echo "|---|---|---:|---:|---:|---:|---|"
  for step in a b c d e f; do
    o=$(field $step ostree 1); g=$(field $step gostree 1)
    omed=$(median $step ostree); gmed=$(median $step gostree)
    om=$(field $step ostree 4); gm=$(field $step gostree 4)
    echo "| $step | ${label[$step]} | $o / $omed | $g / $gmed | $(ratio "$g" "$o") ($(ratio "$gmed" "$omed")) | $(mb "$om") / $(mb "$gm") | ${check[$step]:-} |"
  done
} | tee "$work/results.md"
echo
echo "trees: $(sed -n 4p "$trees/tree-v1.stamp" 2>/dev/null) (v1); $(sed -n 2p "$trees/tree-v1.stamp" 2>/dev/null); $(nproc) cores; $("$OSTREE" --version | sed -n "s/ *Version: '\(.*\)'/ostree \1/p")"

if grep -qs FAIL "$work"/?-*.time; then status=1; fi

if [ "${BENCH_KEEP:-0}" != 1 ]; then
  rm -rf "$work"/r[0-9]*
fi
exit "$status"
