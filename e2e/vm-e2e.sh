#!/usr/bin/env bash
# e2e/vm-e2e.sh — the real-VM end-to-end test (`make e2e`; issue 7). Root, Debian 12, no KVM.
#
# A Debian 12 guest built by scripts/vm/, booted under qemu TCG through GRUB from a disk image
# that gostree made, updated by gostree from the host:
#   1. v1 boots from the image (GRUB reads the grub.cfg gostree generated from the BLS entries);
#      the probe edits /etc/vmtest.conf and writes /var/lib/vmtest/marker;
#   2. v2 deployed into the image from the host (`gostree admin deploy`, grub.cfg regenerated):
#      v2 boots, the /etc edit made under v1 is kept, v2's new /etc file is there, /var kept;
#      the config drive (config-2) and the repository disk (file:// pull) are readable;
#   3. v3, whose health check fails (and reboots), deployed with --boot-counting=2: GRUB boots it
#      twice, then falls back to v2 through the grubenv counter; v3 stays the default entry,
#      its counter at 0;
#   4. v3 undeployed, v4 (healthy) deployed with --boot-counting=2: it boots, the config drive's
#      vmtest/run.sh calls sysroot.BlessBoot (e2e/vmbless, the agent's stand-in), and the host
#      sees the counter gone from the entry name, grub.cfg and grubenv; v4 boots again uncounted.
# Artefacts (serial consoles, qemu logs, images) stay in E2E_DIR (default _build/vm/e2e); on
# failure the step, the end of the serial console and the qemu log are printed.
#   6. with E2E_POWERCUT=1: power cuts (qemu killed) at E2E_POWERCUT_DELAYS seconds (default
#      "1 5 15 90": the last one normally after the deploy returned) into an in-guest
#      `gostree admin deploy` of v5 pulled over file://; each next boot comes up in v4 or v5 (v5
#      if the deploy had returned) and every entry names a complete deployment (~1.5 min each).
# Env: E2E_BOOT_TIMEOUT (s per boot, default 420), VM_DIR, VM_SMP, VM_MEM (scripts/vm/lib.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/vm/lib.sh"
vm_need_root
vm_need_tools qemu-system-x86_64 grub-mkimage mkfs.ext4 genisoimage mmdebstrap losetup
E2E_DIR=${E2E_DIR:-$VM_DIR/e2e}
BOOT_TIMEOUT=${E2E_BOOT_TIMEOUT:-420}
repo=$E2E_DIR/repo
disk=$E2E_DIR/disk.img
mnt=$E2E_DIR/mnt
step=setup
cur_log=
t0=$SECONDS
timings=()

on_exit() {
  local rc=$?
  vm_umount_disk "$mnt" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "=============================================================" >&2
    echo "e2e: FAILED in step '$step' (exit $rc) after $((SECONDS - t0)) s" >&2
    if [ -n "$cur_log" ] && [ -f "$cur_log" ]; then
      echo "--- serial console ($cur_log), last 120 lines:" >&2
      tail -n 120 "$cur_log" >&2
      [ ! -s "$cur_log.qemu" ] || { echo "--- qemu ($cur_log.qemu):" >&2; cat "$cur_log.qemu" >&2; }
    fi
    echo "--- artefacts: $E2E_DIR" >&2
  fi
}
trap on_exit EXIT

fail() { echo "e2e: FAIL: $*" >&2; exit 1; }
timed() { # timed NAME CMD...: run, record the duration
  local s=$SECONDS
  step=$1; shift
  echo "e2e: --- $step" >&2
  "$@"
  timings+=("$(printf '%-44s %4d s' "$step" $((SECONDS - s)))")
}
# val KEY [LOG]: the value of the last "VMTEST KEY=..." line of a serial console.
val() { grep -a "VMTEST $1=" "${2:-$cur_log}" | tail -n 1 | sed "s/.*VMTEST $1=//" || true; }
expect() { # expect DESC GOT WANT
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
  echo "e2e: ok: $1 = '$3'" >&2
}
expect_has() { # expect_has DESC HAYSTACK NEEDLE
  [[ "$2" == *"$3"* ]] || fail "$1: '$2' does not contain '$3'"
  echo "e2e: ok: $1 contains '$3'" >&2
}
boot() { # boot NAME [boot.sh options]: boot the disk, the guest must power off by itself
  local name=$1; shift
  cur_log=$E2E_DIR/serial-$name.log
  "$VM_SCRIPTS/boot.sh" --timeout "$BOOT_TIMEOUT" --log "$cur_log" "$@" "$disk" ||
    fail "boot $name: qemu exit status $? (124: the guest did not power off within $BOOT_TIMEOUT s)"
  grep -aq 'VMTEST end ' "$cur_log" || fail "boot $name: the probe did not finish"
  echo "e2e: boot $name: probe at $(grep -a 'VMTEST begin' "$cur_log" | tail -n 1 | cut -c2-8) s, done at $(grep -a 'VMTEST end' "$cur_log" | tail -n 1 | cut -c2-8) s" >&2
}
commit() { # commit N [--health-fail]: tree vN committed to $VM_REF; prints the checksum
  "$VM_SCRIPTS/make-tree.sh" "$rootfs" "$E2E_DIR/tree" "$@" >&2
  vm_gostree --repo="$repo" commit -b "$VM_REF" -s "vmtest v$1" --add-metadata-string=version="$1" \
    --tree=dir="$E2E_DIR/tree"
  rm -rf "$E2E_DIR/tree"
}
configdrive() { # configdrive OUT.iso [RUN.SH]
  local d=$E2E_DIR/configdrive
  rm -rf "$d"; mkdir -p "$d/openstack/latest"
  echo '{"uuid": "9f3c5b2e-6d1a-4f7e-9a53-gostree-vm", "name": "gostree-vm", "hostname": "gostree-vm", "meta": {"role": "e2e"}}' \
    >"$d/openstack/latest/meta_data.json"
  if [ -n "${2:-}" ]; then mkdir -p "$d/vmtest"; cp "$2" "$d/vmtest/run.sh"; chmod 0755 "$d/vmtest/run.sh"; fi
  "$VM_SCRIPTS/make-disks.sh" configdrive "$1" "$d"
}
inspect() { # inspect: mount the image read-only at $mnt (umount with vm_umount_disk "$mnt")
  vm_mount_disk "$disk" "$mnt" ro
}
grubenv_vars() { grep -a '^gostree_' "$mnt/boot/grub/grubenv" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }

mkdir -p "$E2E_DIR"
# Leftovers of an interrupted run: mounts and loop devices of the old images.
for m in $(findmnt -rn -o TARGET | grep "^$E2E_DIR/" | sort -r || true); do umount "$m"; done
for f in "$disk" "$E2E_DIR/repo.img"; do
  [ -e "$f" ] || continue
  for l in $(losetup -j "$f" | cut -d: -f1); do losetup -d "$l"; done
done
rm -rf "$E2E_DIR"/serial-*.log* "$E2E_DIR/tree" "$repo" "$disk" "$disk".* "$E2E_DIR"/*.iso "$E2E_DIR"/*.img
timed "build gostree binaries" vm_build_bins
step="rootfs"; s=$SECONDS
rootfs=$("$VM_SCRIPTS/build-rootfs.sh")
timings+=("$(printf '%-44s %4d s' "rootfs (cached after the first run)" $((SECONDS - s)))")
vm_gostree --repo="$repo" init --mode=archive

# ---- 1. v1 from a gostree-made image, through GRUB
step="commit v1"; s=$SECONDS; c1=$(commit 1); timings+=("$(printf '%-44s %4d s' "tree + commit v1" $((SECONDS - s)))")
timed "image (v1)" "$VM_SCRIPTS/make-image.sh" "$repo" "$VM_REF" "$disk"
timed "config drive" configdrive "$E2E_DIR/configdrive.iso"
timed "boot 1: v1" boot 1-v1 --cd "$E2E_DIR/configdrive.iso"
step="check boot 1"
expect "boot 1 version" "$(val version)" v1
expect "boot 1 booted deployment" "$(val booted)" "$c1.0"
expect "boot 1 / is the deployment" "$(val root_is_deployment)" yes
expect "boot 1 /run/ostree-booted" "$(val run_ostree_booted)" yes
expect "boot 1 /usr read-only" "$(val usr_readonly)" yes
expect "boot 1 failed units" "$(val failed_units)" ""
expect "boot 1 /etc/vmtest.conf" "$(val etc_vmtest_conf)" "setting=default-from-v1"
expect_has "boot 1 kernel command line" "$(val cmdline)" "ostree=/ostree/boot."
expect "boot 1 config drive" "$(val configdrive)" /dev/vdb
expect_has "boot 1 meta_data.json" "$(val meta_data)" '"name": "gostree-vm"'
expect_has "boot 1 real ostree admin status" "$(grep -a 'VMTEST| ostree: \*' "$cur_log")" "$c1.0"

# ---- 2. v2 deployed from the host; /etc and /var carried over
step="commit v2"; s=$SECONDS; c2=$(commit 2); timings+=("$(printf '%-44s %4d s' "tree + commit v2" $((SECONDS - s)))")
timed "host deploy v2" "$VM_SCRIPTS/deploy.sh" "$disk" "$repo" "$VM_REF"
step="check grub.cfg v2"
inspect
expect "grub.cfg menu entries after deploy v2" "$(grep -a -c '^menuentry' "$mnt/boot/grub/grub.cfg")" 2
expect "grub.cfg default entry boots" "$(basename "$(readlink -f "$mnt$(grep -a -m1 -o "ostree=/ostree/boot[^']*" "$mnt/boot/grub/grub.cfg" | cut -d= -f2)")")" "$c2.0"
vm_umount_disk "$mnt"
timed "repository disk" "$VM_SCRIPTS/make-disks.sh" repodisk "$E2E_DIR/repo.img" "$repo" "$VM_REF"
timed "boot 2: v2" boot 2-v2 --cd "$E2E_DIR/configdrive.iso" --repo "$E2E_DIR/repo.img"
step="check boot 2"
expect "boot 2 version" "$(val version)" v2
expect "boot 2 booted deployment" "$(val booted)" "$c2.0"
expect "boot 2 failed units" "$(val failed_units)" ""
expect "boot 2 /etc/vmtest.conf (v1's local edit kept)" "$(val etc_vmtest_conf)" "setting=default-from-v1|edited=locally-in-v1"
expect "boot 2 new /etc file of v2" "$(val etc_added)" "vmtest-added-in-v2.conf"
expect "boot 2 /var kept" "$(val var_marker)" "booted v1"
expect "boot 2 file:// pull from the repository disk" "$(val repo_pull)" "$c2"
expect_has "boot 2 real ostree admin status: rollback" "$(grep -a 'VMTEST| ostree: ' "$cur_log")" "$c1.0 (rollback)"

# ---- 3. v3 fails its health check; GRUB's counter falls back to v2
step="commit v3"; s=$SECONDS; c3=$(commit 3 --health-fail); timings+=("$(printf '%-44s %4d s' "tree + commit v3 (health fails)" $((SECONDS - s)))")
timed "host deploy v3 --boot-counting=2" "$VM_SCRIPTS/deploy.sh" "$disk" "$repo" "$VM_REF" --boot-counting=2
step="check grub.cfg v3"
inspect
expect_has "entries after deploy v3" "$(ls "$mnt/boot/loader/entries" | tr '\n' ' ')" "ostree-2-$VM_OS+2.conf"
expect_has "grub.cfg countdown for v3" "$(cat "$mnt/boot/grub/grub.cfg")" "set gostree_boot_id='$VM_OS/$c3.0'"
vm_umount_disk "$mnt"
timed "boot 3: v3 x2 (health fails) -> v2" boot 3-v3-fallback --cd "$E2E_DIR/configdrive.iso" --allow-reboot \
  --timeout $((3 * BOOT_TIMEOUT))
step="check boot 3"
expect "boot 3 failed boots of v3" "$(grep -a -c 'VMTEST health=fail version=v3' "$cur_log")" 2
expect "boot 3 GRUB counted down" "$(grep -a -o 'gostree: boot counting: [0-9]* tries left' "$cur_log" | tr '\n' '|')" \
  "gostree: boot counting: 1 tries left|gostree: boot counting: 0 tries left|"
expect "boot 3 GRUB fell back" "$(grep -a -c 'gostree: no boot tries left: booting the previous deployment' "$cur_log")" 1
expect "boot 3 version" "$(val version)" v2
expect "boot 3 booted deployment" "$(val booted)" "$c2.0"
expect "boot 3 grubenv seen by the guest" "$(val grubenv)" "gostree_boot_id=$VM_OS/$c3.0|gostree_tries_left=0"
inspect
expect_has "boot 3 v3 still the default entry, counter kept" "$(ls "$mnt/boot/loader/entries" | tr '\n' ' ')" "ostree-2-$VM_OS+2.conf"
vm_umount_disk "$mnt"

# ---- 4. v3 removed, v4 counted; BlessBoot in the guest ends the countdown
step="undeploy v3"
vm_mount_disk "$disk" "$mnt"
vm_gostree admin undeploy --sysroot="$mnt" 0
vm_umount_disk "$mnt"
step="commit v4"; s=$SECONDS; c4=$(commit 4); timings+=("$(printf '%-44s %4d s' "tree + commit v4" $((SECONDS - s)))")
timed "host deploy v4 --boot-counting=2" "$VM_SCRIPTS/deploy.sh" "$disk" "$repo" "$VM_REF" --boot-counting=2
printf '#!/bin/sh\nexec /usr/bin/vmbless\n' >"$E2E_DIR/bless.sh"
configdrive "$E2E_DIR/configdrive-bless.iso" "$E2E_DIR/bless.sh"
timed "boot 4: v4, BlessBoot" boot 4-v4-bless --cd "$E2E_DIR/configdrive-bless.iso"
step="check boot 4"
expect "boot 4 version" "$(val version)" v4
expect "boot 4 booted deployment" "$(val booted)" "$c4.0"
expect "boot 4 grubenv before BlessBoot" "$(val grubenv)" "gostree_boot_id=$VM_OS/$c4.0|gostree_tries_left=1"
expect "boot 4 /etc (edit kept through v2, v4)" "$(val etc_vmtest_conf)" "setting=default-from-v1|edited=locally-in-v1"
expect "boot 4 /var" "$(val var_marker)" "booted v1|booted v2|booted v2"
expect_has "boot 4 BlessBoot" "$(grep -a 'VMTEST| run.sh: ' "$cur_log")" "blessed $c4.0: entry ostree-2-$VM_OS.conf"
expect "boot 4 run.sh" "$(val run_sh_exit)" 0
inspect
expect "entries after BlessBoot" "$(ls "$mnt/boot/loader/entries" | tr '\n' ' ')" "ostree-1-$VM_OS.conf ostree-2-$VM_OS.conf "
expect "grubenv after BlessBoot" "$(grubenv_vars)" ""
grep -aq save_env "$mnt/boot/grub/grub.cfg" && fail "grub.cfg still counts after BlessBoot"
vm_umount_disk "$mnt"
timed "boot 5: v4 blessed" boot 5-v4 --cd "$E2E_DIR/configdrive.iso"
step="check boot 5"
expect "boot 5 version" "$(val version)" v4
expect "boot 5 booted deployment" "$(val booted)" "$c4.0"
expect "boot 5 GRUB did not count" "$(grep -a -c -E 'gostree: (boot counting|no boot tries)' "$cur_log")" 0
expect "boot 5 grubenv" "$(val grubenv)" ""
expect "boot 5 failed units" "$(val failed_units)" ""

# ---- 6. (E2E_POWERCUT=1) power cuts during an in-guest update
# The guest pulls v5 from the repository disk (file://) and deploys it with its own gostree;
# qemu is killed (SIGKILL: the guest loses whatever it had not written) DELAY seconds after the
# deploy started. The next boot must come up in v4 or v5 (v5 if the deploy had returned), every
# boot entry and what GRUB reads must name a complete deployment, and fsck must pass.
check_sysroot() { # check_sysroot LABEL: entries, grub.cfg, deployments, repository of the image
  local e p d c label=$1 want=() got=()
  default_deployment=
  vm_mount_disk "$disk" "$mnt"
  for e in $(cd "$mnt/boot/loader/entries" && ls | sort -t- -k2,2 -rn); do
    e=$mnt/boot/loader/entries/$e
    p=$(sed -n 's/^options .*ostree=\([^ ]*\).*/\1/p' "$e")
    want+=("$p")
    d=$(readlink -f "$mnt$p")
    c=$(basename "$d"); c=${c%.*}
    [ -f "$d.origin" ] && [ -f "$d/etc/vmtest.conf" ] || fail "$label: $(basename "$e") names an incomplete deployment $d"
    [ -n "$default_deployment" ] || default_deployment=$(basename "$d")
    [ "$(vm_gostree --repo="$mnt/ostree/repo" ls -R "$c" /usr | wc -l)" = "$(cd "$d" && find usr | wc -l)" ] ||
      fail "$label: deployment $(basename "$d") does not hold all of its commit's /usr"
  done
  mapfile -t got < <(grep -a -o "ostree=/ostree/boot[^']*" "$mnt/boot/grub/grub.cfg" | cut -d= -f2)
  expect "$label: what GRUB boots" "${got[*]}" "${want[*]}"
  vm_gostree --repo="$mnt/ostree/repo" fsck >"$E2E_DIR/fsck-$label.log" 2>&1 || { cat "$E2E_DIR/fsck-$label.log" >&2; fail "$label: fsck"; }
  echo "e2e: ok: $label: ${#want[@]} entries, each a complete deployment; fsck passed" >&2
  vm_umount_disk "$mnt"
}
if [ "${E2E_POWERCUT:-0}" = 1 ]; then
  step="commit v5"; s=$SECONDS; c5=$(commit 5); timings+=("$(printf '%-44s %4d s' "tree + commit v5" $((SECONDS - s)))")
  "$VM_SCRIPTS/make-disks.sh" repodisk "$E2E_DIR/repo5.img" "$repo" "$VM_REF"
  cat >"$E2E_DIR/deploy-in-guest.sh" <<'S'
#!/bin/sh
set -e
ref=$(cat /run/gostree-repo/ref)
gostree --repo=/ostree/repo remote add --if-not-exists --no-gpg-verify disk file:///run/gostree-repo/repo
gostree --repo=/ostree/repo pull disk "$ref" >/dev/null
echo "VMTEST deploy=start"
gostree admin deploy "disk:$ref"
echo "VMTEST deploy=done"
S
  configdrive "$E2E_DIR/configdrive-deploy.iso" "$E2E_DIR/deploy-in-guest.sh"
  for delay in ${E2E_POWERCUT_DELAYS:-1 5 15 90}; do
    step="power cut $delay s into an in-guest deploy"; s=$SECONDS
    cur_log=$E2E_DIR/serial-6-cut-$delay.log
    set +e
    "$VM_SCRIPTS/boot.sh" --timeout "$BOOT_TIMEOUT" --log "$cur_log" --cd "$E2E_DIR/configdrive-deploy.iso" \
      --repo "$E2E_DIR/repo5.img" --power-cut "VMTEST deploy=start:$delay" "$disk"
    rc=$?
    set -e
    grep -aq 'VMTEST deploy=start' "$cur_log" || fail "$step: the in-guest deploy did not start (qemu $rc)"
    done_before=no
    grep -aq 'VMTEST deploy=done' "$cur_log" && done_before=yes
    [ "$rc" = 137 ] || [ "$done_before" = yes ] || fail "$step: qemu exit status $rc"
    echo "e2e: $step: qemu $rc, deploy returned before the cut: $done_before" >&2
    timings+=("$(printf '%-44s %4d s' "$step" $((SECONDS - s)))")
    timed "boot after the cut at $delay s" boot "6-after-cut-$delay" --cd "$E2E_DIR/configdrive.iso"
    v=$(val version)
    [ "$v" = v5 ] || [ "$v" = v4 ] || fail "after the cut at $delay s: booted $v"
    [ "$done_before" = no ] || expect "after the cut at $delay s (deploy had returned)" "$v" v5
    expect "after the cut at $delay s: failed units" "$(val failed_units)" ""
    echo "e2e: after the cut at $delay s: booted $v ($(val booted))" >&2
    check_sysroot "cut-$delay"
    # GRUB does not replay the ext4 journal: unless /boot's journal was checkpointed after the
    # switch, GRUB can boot the old entries while Linux (which replays it) sees the new ones.
    [ "$(val booted)" = "$default_deployment" ] || fail "after the cut at $delay s GRUB booted $(val booted), but the committed default entry is $default_deployment: the boot/loader switch was in /boot's journal only (not checkpointed, e.g. by FIFREEZE/FITHAW as ostree does) when the power went"
  done
fi

step=done
echo "e2e: PASS in $((SECONDS - t0)) s" >&2
printf '  %s\n' "${timings[@]}" >&2
