#!/usr/bin/env bash
# scripts/vm/boot.sh [OPTIONS] DISK — boot the image under qemu (TCG) until the guest powers off.
#
#   --cd ISO          attach a config drive (read-only virtio disk)
#   --repo IMG        attach the repository disk (read-only virtio disk)
#   --log FILE        the serial console, each line prefixed with seconds since qemu started
#                     (default DISK.serial.log); qemu's own messages go to FILE.qemu
#   --timeout SEC     kill qemu after SEC seconds (default 600) and exit 124
#   --allow-reboot    let the guest reboot (GRUB boot counting, agent-driven updates); by default
#                     a reboot ends qemu (-no-reboot) like a power-off
#   --power-cut PATTERN:SEC   SEC seconds (a decimal) after PATTERN (grep -E) first appears on the
#                     console, kill qemu with SIGKILL: a power cut for the guest (what it had not
#                     written to its disk is lost); exits 137
# BIOS boot: SeaBIOS -> GRUB's boot.img/core.img -> grub.cfg. No network device.
# Env: VM_MEM (MiB, default 1024), VM_SMP (default 1), VM_QEMU_ACCEL (default tcg,tb-size=256:
# the translation cache capped so qemu stays near 0.7 GB).
# Exit status: qemu's (0 after a guest power-off), 124 on timeout.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_need_tools qemu-system-x86_64
cd_iso='' repo_img='' log='' timeout=600 reboot=(-no-reboot) cut=''
while [ $# -gt 1 ]; do
  case $1 in
    --cd) cd_iso=$2; shift 2 ;;
    --repo) repo_img=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --allow-reboot) reboot=(); shift ;;
    --power-cut) cut=$2; shift 2 ;;
    *) vm_die "unknown option $1" ;;
  esac
done
[ $# -eq 1 ] || vm_die "usage: boot.sh [--cd ISO] [--repo IMG] [--log FILE] [--timeout SEC] [--allow-reboot] DISK"
disk=$1
log=${log:-$disk.serial.log}
args=(-accel "${VM_QEMU_ACCEL:-tcg,tb-size=256}" -cpu max -smp "${VM_SMP:-1}" -m "${VM_MEM:-1024}"
      -display none -monitor none -serial stdio -nic none "${reboot[@]}"
      -drive "file=$disk,format=raw,if=virtio")
[ -z "$cd_iso" ] || args+=(-drive "file=$cd_iso,format=raw,if=virtio,readonly=on")
[ -z "$repo_img" ] || args+=(-drive "file=$repo_img,format=raw,if=virtio,readonly=on")

start=$EPOCHREALTIME
: >"$log"
pidfile=$log.pid
rm -f "$pidfile"
args+=(-pidfile "$pidfile")
watcher=
if [ -n "$cut" ]; then
  # Stopped below once qemu is gone (qemu removes its pidfile when it exits normally).
  (
    pat=${cut%:*} delay=${cut##*:}
    until grep -aqE "$pat" "$log" 2>/dev/null; do sleep 0.2; done
    pid=$(cat "$pidfile" 2>/dev/null) || exit 0
    sleep "$delay"
    echo "boot.sh: power cut ($delay s after /$pat/)" >&2
    kill -KILL "$pid" 2>/dev/null
  ) &
  watcher=$!
fi
set +e
timeout -k 10 "$timeout" qemu-system-x86_64 "${args[@]}" </dev/null 2>"$log.qemu" |
  while IFS= read -r line || [ -n "$line" ]; do
    us=$(( ${EPOCHREALTIME/./} - ${start/./} ))
    printf '[%4d.%02d] %s\n' $((us / 1000000)) $((us % 1000000 / 10000)) "${line%$'\r'}"
  done >>"$log"
rc=${PIPESTATUS[0]}
set -e
if [ -n "$watcher" ]; then kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true; fi
rm -f "$pidfile"
echo "boot.sh: qemu exited with $rc after $(( ${EPOCHREALTIME%.*} - ${start%.*} )) s; console: $log" >&2
exit "$rc"
