#!/usr/bin/env bash
# scripts/vm/make-image.sh REPO REF DISK — a bootable disk image holding one deployment of REF.
#
# `gostree admin install` does the work without mounting anything: a staging sysroot
# (init-fs, os-init $VM_OS, pull-local REPO REF, boot/grub/grub.cfg -> ../loader/grub.cfg, deploy
# with $VM_KARGS), then an MBR image with p1 = /boot (ext4 "boot") and p2 = root (ext4 "root")
# made by mkfs.ext4 -d, and GRUB for BIOS (core.img before p1, boot.img in the MBR). This script
# adds the VM's GRUB settings (serial console, 1 s timeout) as /boot/grub/custom.cfg.
# Env: VM_DISK_SIZE (default 4G), VM_OS, VM_KARGS (lib.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_need_root
vm_need_tools mkfs.ext4 grub-mkimage
[ $# -eq 3 ] || vm_die "usage: make-image.sh REPO REF DISK"
repo=$1 ref=$2 disk=$3
custom=$disk.custom.cfg
cat >"$custom" <<'G'
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
G
rm -f "$disk"
vm_gostree admin install --os="$VM_OS" "${VM_KARGS[@]}" --size="$VM_DISK_SIZE" --boot-size=$((VM_BOOT_SECTORS / 2048))M \
  --grub-custom="$custom" "$repo" "$ref" "$disk"
rm -f "$custom"
vm_log "image $disk: $(du -h "$disk" | cut -f1) used of $VM_DISK_SIZE, $ref deployed"
