#!/usr/bin/env bash
# scripts/vm/make-disks.sh configdrive OUT.iso SRCDIR
#   A config drive as OpenStack makes it: ISO 9660 + Joliet + Rock Ridge, volume label config-2,
#   holding SRCDIR (which should have openstack/latest/meta_data.json). The guest mounts it
#   read-only at /run/config-drive (fstab, by label).
# scripts/vm/make-disks.sh repodisk OUT.img REPO REF
#   The repository disk: an ext4 image labelled gostree-repo made with `mkfs.ext4 -d` from
#   repo/ (a copy of the archive repository REPO) and ref (a file holding REF). The guest mounts it
#   read-only at /run/gostree-repo, so `file:///run/gostree-repo/repo` is a remote URL there.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case ${1:-} in
  configdrive)
    [ $# -eq 3 ] || vm_die "usage: make-disks.sh configdrive OUT.iso SRCDIR"
    vm_need_tools genisoimage
    [ -f "$3/openstack/latest/meta_data.json" ] || vm_die "$3 has no openstack/latest/meta_data.json"
    genisoimage -quiet -o "$2" -V config-2 -J -r "$3"
    ;;
  repodisk)
    [ $# -eq 4 ] || vm_die "usage: make-disks.sh repodisk OUT.img REPO REF"
    vm_need_tools mkfs.ext4
    out=$2 repo=$3 ref=$4
    [ -f "$repo/config" ] || vm_die "$repo is not a repository"
    src=$out.src
    rm -rf "$src" "$out"
    mkdir -p "$src"
    cp -a --reflink=auto "$repo" "$src/repo"
    printf '%s\n' "$ref" >"$src/ref"
    kb=$(du -sk "$src" | cut -f1)
    truncate -s $(((kb * 5 / 4 + 65536) * 1024)) "$out"
    mkfs.ext4 -q -F -L gostree-repo -d "$src" "$out"
    rm -rf "$src"
    ;;
  *) vm_die "usage: make-disks.sh configdrive|repodisk ..." ;;
esac
