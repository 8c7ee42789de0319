#!/usr/bin/env bash
# scripts/vm/build-rootfs.sh — the guest's Debian 12 root file system, cached.
#
# Prints the path of the root file system: VM_DIR/rootfs-<hash>, where <hash> covers the recipe
# below (packages, hook, this file), so a changed recipe builds a new one and an unchanged one is
# reused (the build takes ~80 s plus the download). Older rootfs-* directories are removed.
#
# The recipe is scripts/make-trees.sh's (Debian 12 minbase + systemd, systemd-sysv, the cloud
# kernel, iproute2, less, ca-certificates) with dracut instead of initramfs-tools, plus
# ostree-boot, whose dracut module puts the real ostree-prepare-root into the initramfs, and
# the real ostree CLI (the probe cross-checks gostree's sysroot with `ostree admin status`).
# python3 and openssh-server are left out: the test does not use them and they slow the boot.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_need_root
vm_need_tools mmdebstrap sha256sum

suite=bookworm
packages=systemd,systemd-sysv,udev,linux-image-cloud-amd64,dracut,ostree,ostree-boot,e2fsprogs,kmod,util-linux,iproute2,less,ca-certificates
# dracut runs during the kernel's postinst, before ostree-boot is configured: run it again at the
# end, with the ostree module, for every installed kernel.
hook='for kver in $(ls "$1/lib/modules"); do chroot "$1" dracut --force --no-hostonly --add ostree --kver "$kver" "/boot/initrd.img-$kver"; done'
recipe="suite=$suite variant=minbase include=$packages hook=$hook script=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
hash=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
out=$VM_DIR/rootfs-$hash

if [ -f "$out.stamp" ] && [ -d "$out" ]; then
  vm_log "rootfs: cached ($out)"
  echo "$out"
  exit 0
fi
mkdir -p "$VM_DIR"
for old in "$VM_DIR"/rootfs-*; do
  [ -e "$old" ] || continue
  [ "${old%.stamp}" = "$out" ] && continue
  rm -rf "$old"
done
rm -rf "$out" "$out.stamp"
logf=$VM_DIR/rootfs-$hash.log
start=$SECONDS
vm_log "rootfs: mmdebstrap $suite (+ $packages), log in $logf"
if ! mmdebstrap --variant=minbase --mode=root --include="$packages" --customize-hook="$hook" \
      "$suite" "$out" </dev/null >"$logf" 2>&1; then
  tail -n 40 "$logf" >&2 || true
  rm -rf "$out"
  vm_die "mmdebstrap failed (log: $logf)"
fi
kver=$(ls "$out/lib/modules" | sort | sed -n 1p)
# The initramfs must carry the real ostree-prepare-root (ostree-boot's dracut module).
chroot "$out" lsinitrd "/boot/initrd.img-$kver" >"$VM_DIR/rootfs-$hash.lsinitrd" 2>&1 || true
if ! grep -q 'usr/lib/ostree/ostree-prepare-root' "$VM_DIR/rootfs-$hash.lsinitrd"; then
  rm -rf "$out"
  vm_die "the initramfs of $kver has no ostree-prepare-root (dracut's ostree module missing)"
fi
{
  echo "$recipe"
  echo "kernel=$kver built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$((SECONDS - start)) size=$(du -sh "$out" | cut -f1)"
} >"$out.stamp"
vm_log "rootfs: built in $((SECONDS - start)) s ($out, kernel $kver)"
echo "$out"
