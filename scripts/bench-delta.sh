#!/usr/bin/env bash
# scripts/bench-delta.sh — time `static-delta generate` of gostree against the real ostree on
# the Debian trees (_build/trees, made by scripts/make-trees.sh).
#
#   1. ostree commits tree-v1 (ref v1) and tree-v2 (ref v2) into one archive repo; a second
#      repo with hard-linked objects is made for gostree, so each tool writes its own deltas/.
#   2. Each tool generates the from-scratch delta to v1 and the delta v1→v2, one run each
#      (ostree first); wall time, user+sys CPU and peak RSS come from /usr/bin/time.
#   3. Pulls through the deltas (scripts/bench-delta-pull.sh: both tools, both deltas' makers,
#      best and median of ROUNDS, peak RSS); BENCH_DELTA_PULL=0 skips them.
#   4. Check: gostree's v1→v2 delta is applied by the real ostree (apply-offline into a
#      bare-user repo holding v1) and `ostree fsck` must pass; gostree's empty→v1 delta is
#      applied by gostree (fallback objects come from the repo) and checked with ostree fsck.
#
# Output: a markdown table on stdout and in _build/bench-delta/results.md; logs in
# _build/bench-delta. Goal (issue 3): gostree ≤ 0.1× ostree. Environment: TREES, OSTREE,
# GOSTREE (default: build bin/gostree), BENCH_DELTA_CHECK=0 skips step 4, ROUNDS (step 3).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
trees=${TREES:-$root/_build/trees}
work=$root/_build/bench-delta
OSTREE=${OSTREE:-ostree}
if [ -z "${GOSTREE:-}" ]; then
  GOSTREE=$root/bin/gostree
  go build -o "$GOSTREE" ./cmd/gostree
fi
log() { printf 'bench-delta: %s\n' "$*" >&2; }
die() { printf 'bench-delta: error: %s\n' "$*" >&2; exit 1; }
command -v "$OSTREE" >/dev/null || die "ostree not found: run scripts/deps.sh"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (Debian package time)"
bash scripts/make-trees.sh "$trees" >&2

rm -rf "$work"
mkdir -p "$work"
ro=$work/repo-ostree rg=$work/repo-gostree
flags=(--owner-uid=0 --owner-gid=0 "--timestamp=2020-01-01 00:00:00 +0000" -s bench)
log "committing tree-v1 and tree-v2 into an archive repo (ostree)"
"$OSTREE" init --repo="$ro" --mode=archive
"$OSTREE" --repo="$ro" commit "${flags[@]}" -b v1 --tree=dir="$trees/tree-v1" >/dev/null
"$OSTREE" --repo="$ro" commit "${flags[@]}" -b v2 --tree=dir="$trees/tree-v2" >/dev/null
cp -al "$ro" "$rg"
v1=$("$OSTREE" --repo="$ro" rev-parse v1)
v2=$("$OSTREE" --repo="$ro" rev-parse v2)

# measure NAME CMD...: one run; "wall cpu maxrss_kb" in $work/NAME.time.
measure() {
  local name=$1; shift
  sync
  if ! /usr/bin/time -f '%e %U %S %M' -o "$work/$name.time.raw" "$@" >"$work/$name.log" 2>&1; then
    tail -n 20 "$work/$name.log" >&2
    die "$name failed: $*"
  fi
  awk '{printf "%s %.2f %s\n", $1, $2+$3, $4}' "$work/$name.time.raw" >"$work/$name.time"
  log "$name: $(cut -d' ' -f1 "$work/$name.time") s"
}
measure empty-ostree "$OSTREE" --repo="$ro" static-delta generate --empty --to="$v1"
measure empty-gostree "$GOSTREE" --repo="$rg" static-delta generate --empty --to="$v1"
measure v1v2-ostree "$OSTREE" --repo="$ro" static-delta generate --from="$v1" --to="$v2"
measure v1v2-gostree "$GOSTREE" --repo="$rg" static-delta generate --from="$v1" --to="$v2"

dsize() { du -sb "$1/deltas/$2" 2>/dev/null | cut -f1; }
# The from-scratch delta's directory name has no '-' (modified base64 never contains one).
empty_dir=$(cd "$rg/deltas" && ls -d */* | grep -v -- - | head -n1)
v1v2_dir=$(cd "$rg/deltas" && ls -d */*-* | head -n1)

for key in empty v1v2; do
  dir=$empty_dir; [ "$key" = v1v2 ] && dir=$v1v2_dir
  echo "$(dsize "$ro" "$dir") $(dsize "$rg" "$dir")" >"$work/$key.size"
done

# 3. Pulls through the deltas, gostree against ostree (before step 4, which regenerates gostree's
#    v1 -> v2 delta without fallback objects).
pull_status=0
if [ "${BENCH_DELTA_PULL:-1}" = 1 ]; then
  log "pulls through the deltas (scripts/bench-delta-pull.sh)"
  OSTREE=$OSTREE GOSTREE=$GOSTREE WORK=$work/pull bash scripts/bench-delta-pull.sh "$ro" "$rg" >"$work/pull.out" || pull_status=1
fi

if [ "${BENCH_DELTA_CHECK:-1}" = 1 ]; then
  # ostree's apply-offline refuses deltas with fallback objects: regenerate without them.
  log "check: ostree apply-offline of gostree's v1→v2 delta (--min-fallback-size=0), then ostree fsck"
  "$GOSTREE" --repo="$rg" static-delta generate --from="$v1" --to="$v2" --min-fallback-size=0 >/dev/null 2>&1
  chk=$work/check-ostree
  "$OSTREE" init --repo="$chk" --mode=bare-user
  "$OSTREE" --repo="$chk" pull-local "$ro" "$v1" >/dev/null
  "$OSTREE" --repo="$chk" static-delta apply-offline "$rg/deltas/$v1v2_dir" >"$work/check-ostree.log" 2>&1 ||
    die "ostree could not apply gostree's v1→v2 delta (see $work/check-ostree.log)"
  "$OSTREE" --repo="$chk" refs --create=v2 "$v2"
  "$OSTREE" --repo="$chk" fsck >>"$work/check-ostree.log" 2>&1 || die "ostree fsck failed after applying gostree's delta"
  log "check: gostree apply-offline of its empty→v1 delta, then ostree fsck"
  chk=$work/check-gostree
  "$GOSTREE" init --repo="$chk" --mode=bare-user
  measure apply-empty-gostree "$GOSTREE" --repo="$chk" static-delta apply-offline "$rg/deltas/$empty_dir"
  "$OSTREE" --repo="$chk" refs --create=v1 "$v1"
  "$OSTREE" --repo="$chk" fsck >"$work/check-gostree.log" 2>&1 || die "ostree fsck failed after gostree applied its delta"
  rm -rf "$work/check-ostree" "$work/check-gostree"
  checks="passed"
else
  checks="skipped"
fi

{
  echo "| static-delta generate | ostree s | gostree s | ratio (goal ≤ 0.10) | ostree CPU s | gostree CPU s | ostree RSS MB | gostree RSS MB | ostree size MB | gostree size MB |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for s in empty:"empty → v1" v1v2:"v1 → v2"; do
    IFS=: read -r key label <<<"$s"
    read -r ow oc om <"$work/$key-ostree.time"
    read -r gw gc gm <"$work/$key-gostree.time"
    read -r osz gsz <"$work/$key.size"
    awk -v l="$label" -v ow="$ow" -v gw="$gw" -v oc="$oc" -v gc="$gc" -v om="$om" -v gm="$gm" \
      -v os="$osz" -v gs="$gsz" \
      'BEGIN { printf "| %s | %.1f | %.1f | %.3f | %.1f | %.1f | %.0f | %.0f | %.1f | %.1f |\n", l, ow, gw, gw/ow, oc, gc, om/1024, gm/1024, os/1e6, gs/1e6 }'
  done
  echo
  echo "Sizes: the deltas/ directories (parts + superblock), without fallback objects (fetched as plain objects)."
  echo "Interop checks (ostree applies gostree's v1→v2 delta; ostree fsck after gostree applies its empty→v1 delta): $checks"
  if [ -f "$work/apply-empty-gostree.time" ]; then
    read -r aw ac am <"$work/apply-empty-gostree.time"
    echo "gostree static-delta apply-offline of its empty→v1 delta into bare-user: ${aw} s wall, ${ac} s CPU, $((am / 1024)) MB peak RSS"
  fi
  if [ -f "$work/pull.out" ]; then
    echo
    echo "Pulls through these deltas into a fresh bare repository (scripts/bench-delta-pull.sh, nginx on 127.0.0.1):"
    echo
    cat "$work/pull.out"
  fi
} | tee "$work/results.md"
rm -rf "$ro" "$rg"
exit "$pull_status"
