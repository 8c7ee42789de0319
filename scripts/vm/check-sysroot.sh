#!/usr/bin/env bash
# scripts/vm/check-sysroot.sh [--no-stray] DISK [LABEL] — after a qemu run: the disk holds no half-written
# deployment (issue 7 step 4). The checks of e2e/vm-e2e.sh's check_sysroot, as a script that any
# scenario can run (e2e/vm-agent-e2e.sh does after each of its qemu runs), plus two more.
# DISK is mounted read-only (no journal replay: what the guest left, as GRUB would find it):
#   - every BLS entry of /boot/loader/entries names (ostree=) a deployment that is complete: its
#     .origin, its /etc, and every path of its commit's /usr checked out;
#   - grub.cfg, what GRUB reads, boots exactly those deployments, in the entries' order;
#   - every deployment directory under ostree/deploy/*/deploy named by no entry is listed: the
#     leftover of a deploy cut short by a power cut (removed by the next deploy's cleanup). With
#     --no-stray there must be none (a scenario whose every shutdown is clean);
#   - `gostree fsck` of the repository passes (its output: DISK.fsck-LABEL.log), run on the
#     read-only mount itself (a reader needs no writable lock), so the image is never written.
# Prints one "ok" line (or what is wrong, exit 1). LABEL names the check in messages.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_need_root
stray_ok=yes
if [ "${1:-}" = --no-stray ]; then stray_ok=no; shift; fi
[ $# -ge 1 ] && [ $# -le 2 ] || vm_die "usage: check-sysroot.sh [--no-stray] DISK [LABEL]"
disk=$1 label=${2:-sysroot}
[ -x "$VM_DIR/bin/gostree" ] || vm_die "no $VM_DIR/bin/gostree: build the binaries first (vm_build_bins)"
mnt=$(realpath -m "$disk.check")
cleanup() {
  vm_umount_disk "$mnt"
  rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
vm_mount_disk "$disk" "$mnt" ro
bad() { printf 'check-sysroot: %s: %s\n' "$label" "$*" >&2; exit 1; }

want=() named=()
entries=$(cd "$mnt/boot/loader/entries" && ls | sort -t- -k2,2 -rn)
[ -n "$entries" ] || bad "no boot entries"
for e in $entries; do
  p=$(sed -n 's/^options .*ostree=\([^ ]*\).*/\1/p' "$mnt/boot/loader/entries/$e")
  [ -n "$p" ] || bad "entry $e has no ostree= argument"
  want+=("$p")
  d=$(readlink -f "$mnt$p") || bad "entry $e: $p does not resolve"
  [ -d "$d" ] || bad "entry $e names $p, which is not a directory"
  named+=("$d")
  c=$(basename "$d"); c=${c%.*}
  [ -f "$d.origin" ] || bad "entry $e names $(basename "$d"), which has no .origin (incomplete)"
  [ -d "$d/etc" ] && [ -n "$(ls -A "$d/etc")" ] || bad "entry $e names $(basename "$d"), whose /etc is missing or empty"
  n_commit=$(vm_gostree --repo="$mnt/ostree/repo" ls -R "$c" /usr | wc -l)
  n_dep=$(cd "$d" && find usr | wc -l)
  [ "$n_commit" = "$n_dep" ] || bad "deployment $(basename "$d") holds $n_dep paths of /usr, its commit $n_commit"
done
mapfile -t got < <(grep -a -o "ostree=/ostree/boot[^' ]*" "$mnt/boot/grub/grub.cfg" | cut -d= -f2)
[ "${got[*]}" = "${want[*]}" ] || bad "grub.cfg boots '${got[*]}', the entries name '${want[*]}'"
stray=()
for d in "$mnt"/ostree/deploy/*/deploy/*; do
  [ -d "$d" ] || continue
  case " ${named[*]} " in *" $d "*) ;; *) stray+=("$(basename "$d")") ;; esac
done
if [ ${#stray[@]} -gt 0 ]; then
  [ "$stray_ok" = yes ] || bad "deployment directories named by no entry: ${stray[*]}"
  echo "check-sysroot: $label: not booted by any entry (left by an interrupted deploy): ${stray[*]}" >&2
fi
vm_gostree --repo="$mnt/ostree/repo" fsck >"$disk.fsck-$label.log" 2>&1 || { cat "$disk.fsck-$label.log" >&2; bad "gostree fsck failed"; }
echo "check-sysroot: ok: $label: ${#want[@]} entries, each a complete deployment named by grub.cfg, ${#stray[@]} stray deployment directories; fsck passed" >&2
