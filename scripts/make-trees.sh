#!/usr/bin/env bash
# scripts/make-trees.sh [OUTDIR] — build the two realistic Debian 12 trees used by the
# benchmarks (scripts/bench-compare.sh) and by interop tests that want a real OS tree.
#
#   tree-v1  Debian 12 (bookworm) minbase + systemd, systemd-sysv, linux-image-cloud-amd64,
#            initramfs-tools, python3, openssh-server, ca-certificates, iproute2, less
#   tree-v2  tree-v1 + curl, vim-tiny, jq   (a small "update" on top of v1)
#
# The package set and the post-processing follow shared/bench/make-trees.sh, so numbers
# measured on these trees are comparable with shared/bench/baselines.md:
#   - /dev, /proc, /sys, /run, /tmp and /var/cache/apt are emptied (the directories stay);
#   - the kernel and initramfs go to /usr/lib/modules/$kver/{vmlinuz,initramfs.img}, /boot is emptied;
#   - /etc is moved to /usr/etc (OSTree's layout);
#   - device nodes, FIFOs and sockets are deleted;
#   - the copy is made with plain tar, so xattrs are not carried over (as in the reference recipe).
#
# Output: OUTDIR/tree-v1, OUTDIR/tree-v2 (default OUTDIR: _build/trees in the repository),
# plus OUTDIR/tree-vN.stamp and OUTDIR/mmdebstrap-vN.log beside them (never inside a tree).
# A tree whose stamp matches the current recipe is reused; anything else is rebuilt.
# Needs root (mmdebstrap --mode=root), network to the Debian mirror, ~1 minute and ~1 GB of disk
# per tree while it is built. Environment: KEEP_ROOTFS=1 keeps the raw mmdebstrap output.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/_build/trees}
suite=bookworm
base_pkgs=systemd,systemd-sysv,linux-image-cloud-amd64,initramfs-tools,python3,openssh-server,ca-certificates,iproute2,less
v2_extra=curl,vim-tiny,jq
# Bump when the post-processing below changes, so that cached trees are rebuilt.
recipe_version=1

log() { printf 'make-trees: %s\n' "$*"; }
die() { printf 'make-trees: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap --mode=root keeps file ownership)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: run scripts/deps.sh first"

mkdir -p "$out"
out=$(cd "$out" && pwd)

packages_for() {
  case $1 in
    v1) echo "$base_pkgs" ;;
    v2) echo "$base_pkgs,$v2_extra" ;;
  esac
}

recipe_for() {
  printf 'recipe=%s suite=%s variant=minbase include=%s\n' "$recipe_version" "$suite" "$(packages_for "$1")"
}

# prep SRC DST: turn an mmdebstrap root file system into an OSTree-style tree.
prep() {
  local src=$1 dst=$2 kver
  rm -rf "$dst"
  mkdir -p "$dst"
  tar -C "$src" \
      --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' \
      --exclude='./tmp/*' --exclude='./var/cache/apt/*' \
      -cf - . | tar -C "$dst" -xf -
  kver=$(find "$dst/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort | sed -n 1p)
  [ -n "$kver" ] || die "no kernel found in $src/boot"
  [ -f "$dst/boot/initrd.img-$kver" ] || die "no initramfs for $kver in $src/boot"
  mkdir -p "$dst/usr/lib/modules/$kver"
  mv "$dst/boot/vmlinuz-$kver" "$dst/usr/lib/modules/$kver/vmlinuz"
  mv "$dst/boot/initrd.img-$kver" "$dst/usr/lib/modules/$kver/initramfs.img"
  find "$dst/boot" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  [ ! -e "$dst/usr/etc" ] || die "$dst/usr/etc already exists"
  mv "$dst/etc" "$dst/usr/etc"
  find "$dst" \( -type b -o -type c -o -type p -o -type s \) -delete
  echo "$kver"
}

build() {
  local v=$1 tree=$out/tree-$1 stamp=$out/tree-$1.stamp
  local want; want=$(recipe_for "$v")
  if [ -d "$tree" ] && [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$want" ]; then
    log "tree-$v: cached ($tree)"
    return
  fi
  local rootfs=$out/rootfs-$v tmp=$out/tree-$v.tmp logf=$out/mmdebstrap-$v.log kver start=$SECONDS
  rm -rf "$tree" "$stamp" "$tmp" "$rootfs"
  log "tree-$v: mmdebstrap --variant=minbase --mode=root $suite (+ $(packages_for "$v")), log in $logf"
  if ! mmdebstrap --variant=minbase --mode=root --include="$(packages_for "$v")" \
        "$suite" "$rootfs" </dev/null >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2 || true
    die "mmdebstrap failed for tree-$v (full log: $logf)"
  fi
  kver=$(prep "$rootfs" "$tmp")
  mv "$tmp" "$tree"
  [ "${KEEP_ROOTFS:-0}" = 1 ] || rm -rf "$rootfs"
  {
    echo "$want"
    echo "kernel=$kver"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "size=$(du -sh "$tree" | cut -f1) entries=$(find "$tree" | wc -l) files=$(find "$tree" -type f | wc -l)"
  } >"$stamp"
  log "tree-$v: built in $((SECONDS - start)) s: $(tail -n 1 "$stamp")"
}

build v1
build v2
for v in v1 v2; do
  log "tree-$v: $out/tree-$v $(sed -n 4p "$out/tree-$v.stamp")"
done
