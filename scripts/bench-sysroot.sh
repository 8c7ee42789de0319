#!/usr/bin/env bash
# scripts/bench-sysroot.sh — time `gostree admin deploy` against `ostree admin deploy`.
#
# The measured step: deploy tree-v2 onto a sysroot whose default deployment is tree-v1, both
# already committed into the sysroot's bare repository (checkout with hard links, /etc copy and
# 3-way merge, kernel into /boot, BLS entries, the switch, cleanup and repo prune — everything
# `admin deploy` does). Per round, ostree first, each tool gets its own sysroot whose repo is a
# hard-link copy (cp -al) of one repo holding both commits, and deploys v1 first (not measured).
# `sync` runs before every measured command; the table reports the fastest of ROUNDS (default 3)
# rounds, all figures are kept in _build/bench-sysroot/*.time.
# Both tools run with OSTREE_SYSROOT_DEBUG=mutable-deployments so the sysroots can be deleted
# (the immutable bit is one ioctl, irrelevant to the timing).
#
# Output: a markdown table on stdout and in _build/bench-sysroot/results.md.
# Environment: TREES (default _build/trees), OSTREE, GOSTREE (default: build bin/gostree), ROUNDS.
# Needs root. Exit status 1 if a deploy fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi

trees=${TREES:-$root/_build/trees}
work=$root/_build/bench-sysroot
OSTREE=${OSTREE:-ostree}
ROUNDS=${ROUNDS:-3}
export OSTREE_SYSROOT_DEBUG=mutable-deployments

log() { printf 'bench-sysroot: %s\n' "$*" >&2; }
die() { printf 'bench-sysroot: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v "$OSTREE" >/dev/null || die "ostree not found: run scripts/deps.sh"
if [ -z "${GOSTREE:-}" ]; then
  GOSTREE=$root/bin/gostree
  log "building $GOSTREE"
  go build -o "$GOSTREE" ./cmd/gostree
fi
[ -d "$trees/tree-v1" ] && [ -d "$trees/tree-v2" ] || bash scripts/make-trees.sh "$trees" >&2

rm -rf "$work"
mkdir -p "$work"

# One repo with both commits; every sysroot gets a hard-link copy of it.
master=$work/master
mkdir -p "$master"
"$OSTREE" admin init-fs "$master" >/dev/null
for v in 1 2; do
  log "committing tree-v$v"
  "$OSTREE" --repo="$master/ostree/repo" commit -b os/v$v --owner-uid=0 --owner-gid=0 \
    --timestamp="2020-01-0$v 00:00:00 +0000" --add-metadata-string=version=$v "$trees/tree-v$v" >/dev/null
done

tool_cmd() { case $1 in ostree) cmd=("$OSTREE") ;; gostree) cmd=("$GOSTREE") ;; esac; }

status=0
for round in $(seq 1 "$ROUNDS"); do
  for tool in ostree gostree; do
    tool_cmd $tool
    sr=$work/r$round-$tool
    mkdir -p "$sr"
    "${cmd[@]}" admin init-fs "$sr" >/dev/null
    rm -rf "$sr/ostree/repo"
    cp -al "$master/ostree/repo" "$sr/ostree/repo"
    "${cmd[@]}" admin os-init --sysroot="$sr" os >/dev/null
    "${cmd[@]}" admin deploy --sysroot="$sr" --os=os --karg=root=LABEL=root os/v1 >"$work/r$round-$tool-v1.log" 2>&1 ||
      { log "deploy v1 ($tool) failed"; status=1; continue; }
    sync
    t0=$(date +%s.%N)
    if "${cmd[@]}" admin deploy --sysroot="$sr" --os=os os/v2 >"$work/r$round-$tool-v2.log" 2>&1; then
      t1=$(date +%s.%N)
      awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >"$work/$tool-r$round.time"
      log "round $round: $tool: $(cat "$work/$tool-r$round.time") s"
    else
      log "deploy v2 ($tool) failed:"; tail -n 20 "$work/r$round-$tool-v2.log" >&2; status=1
      echo FAIL >"$work/$tool-r$round.time"
    fi
    rm -rf "$sr"
  done
done

best() { cat "$work/$1"-r*.time | awk '$1 == "FAIL" { f = 1 } NR == 1 || $1 < b { b = $1 } END { if (f) print "FAIL"; else print b }'; }
o=$(best ostree); g=$(best gostree)
ratio=$(awk -v o="$o" -v g="$g" 'BEGIN { if (o + 0 > 0 && g + 0 > 0) printf "%.2f", g / o; else print "-" }')
{
  echo "| operation | ostree s (best of $ROUNDS) | gostree s (best of $ROUNDS) | gostree/ostree |"
  echo "|---|---|---|---|"
  echo "| admin deploy tree-v2 onto tree-v1 (bare sysroot repo) | $o | $g | $ratio |"
} | tee "$work/results.md"
exit $status
