#!/usr/bin/env bash
# e2e/vm-agent-e2e.sh — the agent scenario of the real-VM test (`make e2e-agent`; issue 7 steps
# 1–4). Root, Debian 12, no KVM. The guest updates itself: gostree-agent reads the config drive's
# "gostree" metadata key, pulls the commit it names from the repository disk (file://, ed25519
# signatures checked with the guest remote's key), stages it, reboots, checks the new boot's health
# and blesses it, or rolls back. Every qemu run keeps its reboots (boot.sh --allow-reboot); the
# guest's e2e/agent/run.sh waits for the agent's outcome, prints `gostree-agent status --json` and
# powers off. After each run the host checks the disk (scripts/vm/check-sysroot.sh --no-stray:
# every boot entry and grub.cfg name complete deployments, nothing half-written, fsck passes).
#   0. trees v1..v4 made with --agent (v3: its required health check fails; v4: init exits, the
#      kernel panics), committed and signed with a fresh ed25519 key; the guest's remote "gostree"
#      (file:///run/gostree-repo/repo) has sign-verify=true and that public key;
#   1. boot v1 with no request: the agent is running and idle; the probe edits /etc, writes /var;
#   2. config drive asks for v2: v1 → the agent pulls, stages, reboots → v2 (boot-counted entry);
#      /etc edit and /var kept; the agent blesses the boot (counter gone) and reports success;
#   3. config drive asks for v3: v2 → v3, whose required check fails → the agent makes v2 the
#      default and reboots → v2; status says "health check failed", v3 is blocked and not retried;
#   4. config drive asks for v4: v2 → v4 panics twice (GRUB counts 2 tries) → GRUB falls back to
#      v2; the agent reports that v4 did not boot, blocks it, v2 stays the default.
# Artefacts (serial consoles, qemu logs, images, fsck logs) stay in E2E_DIR (default
# _build/vm/e2e-agent); on failure the step, the end of the serial console and the qemu log are
# printed. Env: E2E_BOOT_TIMEOUT (s per boot, default 420), VM_DIR, VM_SMP, VM_MEM (lib.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/vm/lib.sh"
vm_need_root
vm_need_tools qemu-system-x86_64 grub-mkimage mkfs.ext4 genisoimage mmdebstrap losetup jq openssl
E2E_DIR=${E2E_DIR:-$VM_DIR/e2e-agent}
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
    echo "e2e-agent: FAILED in step '$step' (exit $rc) after $((SECONDS - t0)) s" >&2
    if [ -n "$cur_log" ] && [ -f "$cur_log" ]; then
      echo "--- serial console ($cur_log), last 150 lines:" >&2
      tail -n 150 "$cur_log" >&2
      [ ! -s "$cur_log.qemu" ] || { echo "--- qemu ($cur_log.qemu):" >&2; cat "$cur_log.qemu" >&2; }
    fi
    echo "--- artefacts: $E2E_DIR" >&2
  fi
}
trap on_exit EXIT

fail() { echo "e2e-agent: FAIL: $*" >&2; exit 1; }
note_time() { timings+=("$(printf '%-52s %4d s' "$1" "$2")"); }
timed() { # timed NAME CMD...: run, record the duration
  local s=$SECONDS
  step=$1; shift
  echo "e2e-agent: --- $step" >&2
  "$@"
  note_time "$step" $((SECONDS - s))
}
# val KEY: the value of the last "VMTEST KEY=..." line of the current serial console.
val() { grep -a "VMTEST $1=" "$cur_log" | tail -n 1 | sed "s/.*VMTEST $1=//" || true; }
expect() { # expect DESC GOT WANT
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
  echo "e2e-agent: ok: $1 = '$3'" >&2
}
expect_has() { # expect_has DESC HAYSTACK NEEDLE
  [[ "$2" == *"$3"* ]] || fail "$1: '$2' does not contain '$3'"
  echo "e2e-agent: ok: $1 contains '$3'" >&2
}
# status_json: the last `gostree-agent status --json` that run.sh printed on the current console.
status_json() {
  awk '/VMTEST\| run\.sh: STATUS-JSON-BEGIN/ { b = ""; on = 1; next }
       /VMTEST\| run\.sh: STATUS-JSON-END/ { last = b; on = 0; next }
       on && /VMTEST\| run\.sh: / { sub(/^.*VMTEST\| run\.sh: /, ""); b = b $0 "\n" }
       END { printf "%s", last }' "$cur_log"
}
sj() { # sj JQ-FILTER: a field of the last status (jq -r)
  local j
  j=$(status_json)
  [ -n "$j" ] || fail "no 'gostree-agent status --json' on the console"
  jq -r "$1" <<<"$j" || fail "status JSON unreadable (jq $1): $j"
}
# versions: the version of each boot of the current console, in order (vmtest-early.service).
versions() { grep -a -o 'VMTEST boot version=v[0-9]*' "$cur_log" | cut -d= -f2 | tr '\n' ' '; }
# timeline: when each boot of a qemu run reached the probe, and the agent's milestones.
timeline() {
  grep -a -E 'VMTEST (boot|begin|end) |VMTEST init=|Kernel panic|gostree: (boot counting|no boot tries)|run\.sh: agent (phase|outcome)|level=(info|warning|error) msg="(pulled|staged|rebooting|health check|booted|previous|rolled|deployment|done|failed)' "$cur_log" |
    sed 's/^/e2e-agent:   /' >&2 || true
}
# boot NAME WANT_BOOTS [boot.sh options]: boot the disk once (qemu may see several boots with
# --allow-reboot); the guest must power off by itself.
boot() {
  local name=$1 boots=$2 s=$SECONDS rc=0
  shift 2
  cur_log=$E2E_DIR/serial-$name.log
  step="boot $name"
  echo "e2e-agent: --- $step" >&2
  "$VM_SCRIPTS/boot.sh" --timeout $((boots * BOOT_TIMEOUT)) --log "$cur_log" "$@" "$disk" || rc=$?
  [ $rc = 0 ] || fail "boot $name: qemu exit status $rc (124: the guest did not power off within $((boots * BOOT_TIMEOUT)) s)"
  grep -aq 'VMTEST end ' "$cur_log" || fail "boot $name: the probe did not finish"
  note_time "$step" $((SECONDS - s))
  timeline
}
keygen() { # an ed25519 key pair: $E2E_DIR/ed25519.secret (base64 seed+public, 0600), $pub
  local pem=$E2E_DIR/ed25519.pem seed
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$pem")
  seed=$(openssl pkey -in "$pem" -outform DER | tail -c 32 | base64 -w0)
  pub=$(openssl pkey -in "$pem" -pubout -outform DER | tail -c 32 | base64 -w0)
  (umask 077 && { printf '%s' "$seed" | base64 -d; printf '%s' "$pub" | base64 -d; } | base64 -w0 >"$E2E_DIR/ed25519.secret" &&
    echo >>"$E2E_DIR/ed25519.secret")
  rm -f "$pem"
}
agent_config() { # the agent's /etc/gostree/agent.yaml in the guest
  cat >"$E2E_DIR/agent.yaml" <<'Y'
# gostree-agent in the VM test (e2e/vm-agent-e2e.sh): metadata from the config drive only,
# commits verified by the "gostree" remote (sign-verify, ed25519), boot-counted entries,
# reboot at once, quick polls.
remote: gostree
poll_interval: 5s
max_backoff: 30s
metadata:
  collectors: [config_drive]
  config_drive:
    dir: /run/config-drive
deploy:
  boot_counting_tries: 2
reboot:
  policy: immediate
  warn_users: false
  delay: 0s
health:
  timeout: 2m
  report_wait: 5m
Y
}
# commit N [--health-fail] [--panic]: tree vN (with the agent) committed to $VM_REF and signed;
# prints the checksum.
commit() {
  local n=$1 panic=no opts=() c t=$E2E_DIR/tree
  shift
  for o in "$@"; do
    case $o in --panic) panic=yes ;; *) opts+=("$o") ;; esac
  done
  "$VM_SCRIPTS/make-tree.sh" "$rootfs" "$t" "$n" --agent --agent-config "$E2E_DIR/agent.yaml" "${opts[@]}" >&2
  # The remote the agent verifies every commit with (whatever the metadata's source).
  mkdir -p "$t/usr/etc/ostree/remotes.d"
  cat >"$t/usr/etc/ostree/remotes.d/gostree.conf" <<R
[remote "gostree"]
url=file:///run/gostree-repo/repo
gpg-verify=false
sign-verify=true
verification-ed25519-key=$pub
R
  # Which version boots, said early (the probe comes after multi-user.target, which a boot the
  # agent reboots at once may not reach).
  printf '#!/bin/sh\necho "VMTEST boot version=$(cat /usr/lib/vmtest/version)" >/dev/console\n' \
    >"$t/usr/libexec/vmtest/early.sh"
  chmod 0755 "$t/usr/libexec/vmtest/early.sh"
  printf '[Unit]\nDescription=vmtest: say which version boots\nDefaultDependencies=no\n[Service]\nType=oneshot\nExecStart=/usr/libexec/vmtest/early.sh\n' \
    >"$t/usr/lib/systemd/system/vmtest-early.service"
  mkdir -p "$t/usr/lib/systemd/system/sysinit.target.wants"
  ln -sf ../vmtest-early.service "$t/usr/lib/systemd/system/sysinit.target.wants/vmtest-early.service"
  # The agent's, the health check's and finalization's logs on the serial console too.
  for u in gostree-agent gostree-healthcheck gostree-finalize-staged; do
    mkdir -p "$t/usr/lib/systemd/system/$u.service.d"
    printf '[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n' \
      >"$t/usr/lib/systemd/system/$u.service.d/50-vmtest-console.conf"
  done
  if [ "$panic" = yes ]; then
    # Never reaches boot-complete: the initramfs switches root into a system manager that exits,
    # the kernel panics (attempted to kill init) and reboots (panic=10).
    rm -f "$t/usr/lib/systemd/systemd"
    printf '#!/bin/sh\necho "VMTEST init=exits version=v%s (kernel panic next)" >/dev/console\nexit 1\n' "$n" \
      >"$t/usr/lib/systemd/systemd"
    chmod 0755 "$t/usr/lib/systemd/systemd"
  fi
  c=$(vm_gostree --repo="$repo" commit -b "$VM_REF" -s "vmtest v$n" --add-metadata-string=version="$n" \
    --sign-from-file="$E2E_DIR/ed25519.secret" --tree=dir="$t")
  vm_gostree --repo="$repo" sign --verify "$c" "$pub" >&2 || fail "commit v$n: signature does not verify"
  rm -rf "$t"
  echo "$c"
}
configdrive() { # configdrive OUT.iso [COMMIT]: config drive asking for COMMIT (none: no request)
  local d=$E2E_DIR/configdrive out=$1 c=${2:-}
  rm -rf "$d"; mkdir -p "$d/openstack/latest" "$d/vmtest"
  jq -n --arg c "$c" --arg ref "$VM_REF" '
    {uuid: "5c0c6f36-0b1e-4d5e-8a3f-2f6b1c9e7a10", name: "gostree-vm", hostname: "gostree-vm",
     meta: ({role: "e2e-agent"} + if $c == "" then {} else {gostree: ({ostree_commit: $c, ostree_ref: $ref,
       ostree_repo_url: "file:///run/gostree-repo/repo", reboot_policy: "immediate"} | tojson)} end)}' \
    >"$d/openstack/latest/meta_data.json"
  install -m 0755 "$vm_root/e2e/agent/run.sh" "$d/vmtest/run.sh"
  if [ -n "$c" ]; then
    echo "metadata:$c" >"$d/vmtest/want"
    echo 15 >"$d/vmtest/settle"   # three polls: a blocked commit must not be tried again
    : >"$d/vmtest/keep-running"   # run.sh powers off once the agent is done
  else
    echo 12 >"$d/vmtest/settle"   # let the agent poll the drive a few times first
  fi
  "$VM_SCRIPTS/make-disks.sh" configdrive "$out" "$d"
}
inspect() { vm_mount_disk "$disk" "$mnt" ro; }
grubenv_vars() { grep -a '^gostree_' "$mnt/boot/grub/grubenv" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
check_disk() { timed "check disk after $1" "$VM_SCRIPTS/check-sysroot.sh" --no-stray "$disk" "$1"; }
# default_commit: the commit of the deployment GRUB boots first.
default_commit() { basename "$(readlink -f "$mnt$(grep -a -m1 -o "ostree=/ostree/boot[^' ]*" "$mnt/boot/grub/grub.cfg" | cut -d= -f2)")" | cut -d. -f1; }

mkdir -p "$E2E_DIR"
# Leftovers of an interrupted run: mounts and loop devices of the old images.
for m in $(findmnt -rn -o TARGET | grep "^$E2E_DIR/" | sort -r || true); do umount "$m"; done
for f in "$disk" "$E2E_DIR/repo.img"; do
  [ -e "$f" ] || continue
  for l in $(losetup -j "$f" | cut -d: -f1); do losetup -d "$l"; done
done
rm -rf "$E2E_DIR"/serial-*.log* "$E2E_DIR/tree" "$repo" "$disk" "$disk".* "$E2E_DIR"/*.iso "$E2E_DIR"/*.img \
  "$E2E_DIR/configdrive" "$E2E_DIR/ed25519".*
timed "build gostree binaries" vm_build_bins
step="rootfs"; s=$SECONDS
rootfs=$("$VM_SCRIPTS/build-rootfs.sh")
note_time "rootfs (cached after the first run)" $((SECONDS - s))
vm_gostree --repo="$repo" init --mode=archive
keygen
agent_config

# ---- 0. the trees, the image (v1) and the repository disk (v2..v4)
step="commit v1"; s=$SECONDS; c1=$(commit 1); note_time "tree + commit v1" $((SECONDS - s))
timed "image (v1)" "$VM_SCRIPTS/make-image.sh" "$repo" "$VM_REF" "$disk"
step="commit v2"; s=$SECONDS; c2=$(commit 2); note_time "tree + commit v2" $((SECONDS - s))
step="commit v3"; s=$SECONDS; c3=$(commit 3 --health-fail); note_time "tree + commit v3 (health check fails)" $((SECONDS - s))
step="commit v4"; s=$SECONDS; c4=$(commit 4 --panic); note_time "tree + commit v4 (kernel panic)" $((SECONDS - s))
echo "e2e-agent: v1 $c1, v2 $c2, v3 $c3, v4 $c4" >&2
timed "repository disk" "$VM_SCRIPTS/make-disks.sh" repodisk "$E2E_DIR/repo.img" "$repo" "$VM_REF"
timed "config drives" eval 'configdrive "$E2E_DIR/cd-none.iso" && configdrive "$E2E_DIR/cd-v2.iso" "$c2" &&
  configdrive "$E2E_DIR/cd-v3.iso" "$c3" && configdrive "$E2E_DIR/cd-v4.iso" "$c4"'

# ---- 1. v1, nothing requested: the agent runs and stays idle; /etc and /var written under v1
boot 1-v1-idle 1 --cd "$E2E_DIR/cd-none.iso" --repo "$E2E_DIR/repo.img"
step="check boot 1"
expect "boot 1 version" "$(val version)" v1
expect "boot 1 booted deployment" "$(val booted)" "$c1.0"
expect "boot 1 failed units" "$(val failed_units)" ""
expect "boot 1 /etc/vmtest.conf" "$(val etc_vmtest_conf)" "setting=default-from-v1"
expect_has "boot 1 agent unit" "$(grep -a 'VMTEST| run.sh: agent unit:' "$cur_log" | tail -n 1)" "agent unit: active"
expect "boot 1 agent job" "$(sj '.agent.job // "none"')" none
expect "boot 1 agent last outcome" "$(sj '.agent.last // "none"')" none
[ "$(sj '.agent.last_poll // ""')" != "" ] || fail "boot 1: the agent never polled"
expect "boot 1 agent metadata errors" "$(sj '.agent.last_poll_error // ""')" ""
check_disk 1-v1-idle

# ---- 2. v2 requested: the agent pulls, stages, reboots; /etc and /var carried over; blessed
boot 2-v1-to-v2 2 --allow-reboot --cd "$E2E_DIR/cd-v2.iso" --repo "$E2E_DIR/repo.img"
step="check boot 2"
expect "boot 2 versions booted" "$(versions)" "v1 v2 "
expect "boot 2 version" "$(val version)" v2
expect "boot 2 booted deployment" "$(val booted)" "$c2.0"
expect "boot 2 failed units" "$(val failed_units)" ""
expect "boot 2 /etc/vmtest.conf (v1's local edit kept)" "$(val etc_vmtest_conf)" "setting=default-from-v1|edited=locally-in-v1"
expect "boot 2 new /etc file of v2" "$(val etc_added)" "vmtest-added-in-v2.conf"
# The v1 boot of this run writes its line only if its probe got there before the agent's reboot.
[[ "$(val var_marker)" =~ ^booted\ v1(\|booted\ v1)?$ ]] || fail "boot 2 /var kept: got '$(val var_marker)', want the line(s) written under v1"
echo "e2e-agent: ok: boot 2 /var kept: '$(val var_marker)'" >&2
expect "boot 2 health check ran in v2" "$(grep -a -c 'VMTEST health=ok version=v2' "$cur_log")" 1
expect_has "boot 2 v2 booted with a boot counter" "$(grep -a 'gostree: boot counting:' "$cur_log" | tail -n 1)" "1 tries left"
expect "boot 2 agent job" "$(sj '.agent.job // "none"')" none
expect "boot 2 agent last request" "$(sj '.agent.last.key')" "metadata:$c2"
expect "boot 2 agent last ok" "$(sj '.agent.last.ok')" true
expect_has "boot 2 agent last reason" "$(sj '.agent.last.reason')" "running $c2;"
expect "boot 2 agent blocked" "$(sj '.agent.blocked.commit // "none"')" none
expect "boot 2 booted commit (status)" "$(sj '[.deployments[] | select(.booted) | .commit][0]')" "$c2"
expect "boot 2 rollback deployment (status)" "$(sj '.deployments[1].commit')" "$c1"
inspect
expect "boot 2 entries after BlessBoot (no counter)" "$(ls "$mnt/boot/loader/entries" | tr '\n' ' ')" "ostree-1-$VM_OS.conf ostree-2-$VM_OS.conf "
expect "boot 2 grubenv after BlessBoot" "$(grubenv_vars)" ""
grep -aq save_env "$mnt/boot/grub/grub.cfg" && fail "boot 2: grub.cfg still counts after BlessBoot"
expect "boot 2 GRUB's default" "$(default_commit)" "$c2"
vm_umount_disk "$mnt"
check_disk 2-v1-to-v2

# ---- 3. v3 requested, its required health check fails: the agent rolls back to v2
boot 3-v2-to-v3-rollback 3 --allow-reboot --cd "$E2E_DIR/cd-v3.iso" --repo "$E2E_DIR/repo.img"
step="check boot 3"
expect "boot 3 versions booted" "$(versions)" "v2 v3 v2 "
expect "boot 3 v3's health check failed" "$(grep -a -c 'VMTEST health=fail version=v3' "$cur_log")" 1
expect "boot 3 version" "$(val version)" v2
expect "boot 3 booted deployment" "$(val booted)" "$c2.0"
expect "boot 3 /etc/vmtest.conf" "$(val etc_vmtest_conf)" "setting=default-from-v1|edited=locally-in-v1"
expect "boot 3 agent job (v3 not retried)" "$(sj '.agent.job // "none"')" none
expect "boot 3 agent last request" "$(sj '.agent.last.key')" "metadata:$c3"
expect "boot 3 agent last ok" "$(sj '.agent.last.ok')" false
expect_has "boot 3 agent says why" "$(sj '.agent.last.reason')" "health check failed"
expect_has "boot 3 agent names the check" "$(sj '.agent.last.reason')" "50-vmtest"
expect "boot 3 v3 blocked" "$(sj '.agent.blocked.commit // "none"')" "$c3"
expect "boot 3 booted commit (status)" "$(sj '[.deployments[] | select(.booted) | .commit][0]')" "$c2"
expect "boot 3 default deployment (status)" "$(sj '.deployments[0].commit')" "$c2"
expect_has "boot 3 status text" "$(grep -a 'VMTEST| run.sh:   Last:' "$cur_log" | tail -n 1)" "FAILED: health check failed"
inspect
expect "boot 3 GRUB's default" "$(default_commit)" "$c2"
vm_umount_disk "$mnt"
check_disk 3-v2-to-v3-rollback

# ---- 4. v4 requested, it never reaches boot-complete: GRUB's counter falls back to v2
boot 4-v2-to-v4-fallback 4 --allow-reboot --cd "$E2E_DIR/cd-v4.iso" --repo "$E2E_DIR/repo.img"
step="check boot 4"
expect "boot 4 versions reaching the system manager" "$(versions)" "v2 v2 "
expect "boot 4 v4's init exited" "$(grep -a -c 'VMTEST init=exits version=v4' "$cur_log")" 2
expect "boot 4 kernel panics" "$(grep -a -c 'Kernel panic - not syncing' "$cur_log")" 2
expect "boot 4 GRUB counted down" "$(grep -a -o 'gostree: boot counting: [0-9]* tries left' "$cur_log" | tr '\n' '|')" \
  "gostree: boot counting: 1 tries left|gostree: boot counting: 0 tries left|"
expect "boot 4 GRUB fell back" "$(grep -a -c 'gostree: no boot tries left: booting the previous deployment' "$cur_log")" 1
expect "boot 4 version" "$(val version)" v2
expect "boot 4 booted deployment" "$(val booted)" "$c2.0"
expect "boot 4 booted commit (status)" "$(sj '[.deployments[] | select(.booted) | .commit][0]')" "$c2"
expect "boot 4 agent job (v4 not retried)" "$(sj '.agent.job // "none"')" none
expect "boot 4 agent last request" "$(sj '.agent.last.key')" "metadata:$c4"
expect "boot 4 agent last ok" "$(sj '.agent.last.ok')" false
expect_has "boot 4 agent says why" "$(sj '.agent.last.reason')" "did not boot"
expect "boot 4 v4 blocked" "$(sj '.agent.blocked.commit // "none"')" "$c4"
expect "boot 4 default deployment (status)" "$(sj '.deployments[0].commit')" "$c2"
inspect
expect "boot 4 GRUB's default" "$(default_commit)" "$c2"
vm_umount_disk "$mnt"
check_disk 4-v2-to-v4-fallback

step=done
echo "e2e-agent: PASS in $((SECONDS - t0)) s" >&2
printf '  %s\n' "${timings[@]}" >&2
