#!/usr/bin/env bash
# scripts/vm/deploy.sh DISK REPO REF [gostree admin deploy options...]
#
# An update from the host: loop-mount the image's root and /boot, `gostree pull-local REPO REF`
# into its ostree/repo, `gostree admin deploy --os=$VM_OS REF OPTIONS` (kernel arguments and /etc
# are inherited from the current default deployment; gostree rewrites boot/loader.N/grub.cfg),
# print `gostree admin status`, unmount.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_need_root
[ $# -ge 3 ] || vm_die "usage: deploy.sh DISK REPO REF [deploy options...]"
disk=$1 repo=$2 ref=$3
shift 3
mnt=$disk.mnt
trap 'vm_umount_disk "$mnt"' EXIT
vm_mount_disk "$disk" "$mnt"
vm_gostree --repo="$mnt/ostree/repo" pull-local "$repo" "$ref" >/dev/null
vm_gostree admin deploy --sysroot="$mnt" --os="$VM_OS" "$@" "$ref"
vm_gostree admin status --sysroot="$mnt"
