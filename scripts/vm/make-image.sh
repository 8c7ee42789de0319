#!/usr/bin/env bash
# scripts/vm/make-image.sh REPO REF DISK — a bootable disk image holding one deployment of REF.
#
# Everything on the image is written by gostree; no file system is mounted:
#   1. a staging sysroot in DISK.stage/: `gostree admin init-fs`, `admin os-init $VM_OS`,
#      `pull-local REPO REF` into its ostree/repo, boot/grub/grub.cfg -> ../loader/grub.cfg (so
#      gostree detects GRUB and writes grub.cfg next to the BLS entries), boot/grub/custom.cfg
#      (serial console, 1 s timeout), GRUB's i386-pc modules, then
#      `gostree admin deploy --os=$VM_OS $VM_KARGS REF`;
#   2. DISK: MBR (sfdisk), p1 = the staging boot/ as ext4 "boot", p2 = the rest of the staging
#      sysroot as ext4 "root", both made with `mkfs.ext4 -d` straight into the image (-E offset);
#   3. GRUB for BIOS without grub-install: core.img (grub-mkimage: biosdisk, part_msdos, ext2,
#      prefix (hd0,msdos1)/grub) in the gap after the MBR, boot.img's code in the MBR's first
#      440 bytes (the partition table is kept).
# Env: VM_DISK_SIZE (default 4G), VM_OS, VM_KARGS (lib.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_need_root
vm_need_tools sfdisk mkfs.ext4 grub-mkimage
[ $# -eq 3 ] || vm_die "usage: make-image.sh REPO REF DISK"
repo=$1 ref=$2 disk=$3
grub_lib=/usr/lib/grub/i386-pc
[ -f "$grub_lib/boot.img" ] || vm_die "no $grub_lib/boot.img (Debian package grub-pc-bin)"
stage=$disk.stage
root=$stage/root

rm -rf "$stage"
mkdir -p "$root"
vm_gostree admin init-fs "$root"
# Staging only: no fsync (the image is written by mkfs afterwards). Unset again below.
vm_gostree --repo="$root/ostree/repo" config set core.fsync false
vm_gostree admin os-init --sysroot="$root" "$VM_OS"
vm_gostree --repo="$root/ostree/repo" pull-local "$repo" "$ref" >/dev/null
mkdir -p "$root/boot/grub/i386-pc"
ln -s ../loader/grub.cfg "$root/boot/grub/grub.cfg"
cat >"$root/boot/grub/custom.cfg" <<'G'
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
G
cp "$grub_lib"/*.mod "$grub_lib"/*.lst "$root/boot/grub/i386-pc/"
OSTREE_SYSROOT_DEBUG=mutable-deployments vm_gostree admin deploy --sysroot="$root" --os="$VM_OS" "${VM_KARGS[@]}" "$ref"
vm_gostree --repo="$root/ostree/repo" config unset core.fsync
[ -L "$root/boot/loader" ] && [ -f "$root/boot/loader/grub.cfg" ] || vm_die "gostree wrote no boot/loader/grub.cfg"
mv "$root/boot" "$stage/boot"
mkdir -m 0755 "$root/boot"

rm -f "$disk"
truncate -s "$VM_DISK_SIZE" "$disk"
sfdisk -q "$disk" <<P
label: dos
start=$VM_BOOT_START, size=$VM_BOOT_SECTORS, type=83, bootable
start=$VM_ROOT_START, type=83
P
disk_bytes=$(stat -c %s "$disk")
mkfs.ext4 -q -F -L boot -E offset=$((VM_BOOT_START * 512)) -d "$stage/boot" "$disk" $((VM_BOOT_SECTORS / 2))k
mkfs.ext4 -q -F -L root -E offset=$((VM_ROOT_START * 512)) -d "$root" "$disk" $(((disk_bytes / 512 - VM_ROOT_START) / 2))k
[ "$(stat -c %s "$disk")" = "$disk_bytes" ] || vm_die "mkfs.ext4 changed the size of $disk"

grub-mkimage -O i386-pc -o "$stage/core.img" -p '(hd0,msdos1)/grub' biosdisk part_msdos ext2
[ $(( ($(stat -c %s "$stage/core.img") + 511) / 512 + 1 )) -le $VM_BOOT_START ] || vm_die "core.img does not fit before p1"
dd if="$grub_lib/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$stage/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
rm -rf "$stage"
vm_log "image $disk: $(du -h "$disk" | cut -f1) used of $VM_DISK_SIZE, $ref deployed"
