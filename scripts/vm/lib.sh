# scripts/vm/lib.sh — shared settings and helpers of the VM scripts (sourced, not run).
#
# Layout of the work directory VM_DIR (default _build/vm in the repository):
#   rootfs-<hash>/        the mmdebstrap'ed Debian root file system, cached by recipe hash
#   rootfs-<hash>.stamp   its recipe and build time
#   bin/                  the gostree binaries built for the guest (CGO_ENABLED=0)
#   <run>/                one scenario's trees, repo, images and logs (e2e/vm-e2e.sh: VM_DIR/e2e)

vm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VM_DIR=${VM_DIR:-$vm_root/_build/vm}
VM_SCRIPTS=$vm_root/scripts/vm

# The disk layout (MBR): a 1 MiB gap for GRUB's core.img, p1 = /boot (ext4, label boot),
# p2 = the physical root (ext4, label root).
VM_BOOT_START=2048
VM_BOOT_SECTORS=$((512 * 2048))     # 512 MiB
VM_ROOT_START=$((VM_BOOT_START + VM_BOOT_SECTORS))
VM_DISK_SIZE=${VM_DISK_SIZE:-4G}

VM_OS=${VM_OS:-debian}
VM_REF=${VM_REF:-debian/bookworm/x86_64}
# root=/rw/console are what the guest needs; the kvm modules are blacklisted because loading
# kvm_amd under TCG (-cpu max advertises SVM) can stall the guest for ~20 s; panic=10 reboots
# after a kernel panic, so a deployment that panics uses up its GRUB boot tries instead of hanging.
VM_KARGS=(--karg=root=LABEL=root --karg=rw --karg=console=ttyS0,115200 --karg=module_blacklist=kvm,kvm_amd,kvm_intel --karg=panic=10)

# go: prefer the project's toolchain
if [ -x /usr/local/go/bin/go ]; then PATH=/usr/local/go/bin:$PATH; fi

vm_log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
vm_die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }
vm_need_root() { [ "$(id -u)" -eq 0 ] || vm_die "must run as root (loop devices, mounts, mmdebstrap --mode=root)"; }
vm_need_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || vm_die "missing tools: ${missing[*]} (run: scripts/deps.sh --vm)"
}

# vm_gostree ARGS...: the host-side gostree (built once into VM_DIR/bin).
vm_gostree() { "$VM_DIR/bin/gostree" "$@"; }

# vm_build_bins: build every ./cmd/* and the test helpers ./e2e/* (static, no cgo) into
# VM_DIR/bin, for the host and the guest (make-tree.sh installs them all into /usr/bin).
vm_build_bins() {
  rm -rf "$VM_DIR/bin"
  mkdir -p "$VM_DIR/bin"
  local d rel
  for d in "$vm_root"/cmd/*/ "$vm_root"/e2e/*/; do
    d=${d%/}
    ls "$d"/*.go >/dev/null 2>&1 || continue
    rel=${d#"$vm_root"/}
    (cd "$vm_root" && CGO_ENABLED=0 go build -trimpath -o "$VM_DIR/bin/$(basename "$d")" "./$rel") ||
      vm_die "go build ./$rel failed"
  done
}

# Loop-mount the two partitions of DISK at MNT (root) and MNT/boot. VM_LOOPS collects the devices.
VM_LOOPS=()
# With a third argument "ro", both are mounted read-only (and without journal replay).
vm_mount_disk() {
  local disk=$1 mnt=$2 ro=() lb lr
  [ "${3:-}" != ro ] || ro=(-r)
  lr=$(losetup -f --show "${ro[@]}" -o $((VM_ROOT_START * 512)) "$disk") || vm_die "losetup root of $disk"
  VM_LOOPS+=("$lr")
  lb=$(losetup -f --show "${ro[@]}" -o $((VM_BOOT_START * 512)) --sizelimit $((VM_BOOT_SECTORS * 512)) "$disk") || vm_die "losetup boot of $disk"
  VM_LOOPS+=("$lb")
  mkdir -p "$mnt"
  if [ ${#ro[@]} -gt 0 ]; then
    mount -o ro,noload "$lr" "$mnt"
    mount -o ro,noload "$lb" "$mnt/boot"
  else
    mount "$lr" "$mnt"
    mount "$lb" "$mnt/boot"
  fi
}
vm_umount_disk() {
  local mnt=$1 l
  if mountpoint -q "$mnt/boot"; then umount "$mnt/boot"; fi
  if mountpoint -q "$mnt"; then umount "$mnt"; fi
  for l in "${VM_LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  VM_LOOPS=()
}
