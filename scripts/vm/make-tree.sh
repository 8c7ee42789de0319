#!/usr/bin/env bash
# scripts/vm/make-tree.sh ROOTFS TREE VERSION [--health-fail] [--agent] [--agent-config FILE]
#
# Turns the Debian root file system made by build-rootfs.sh into an OSTree-ready tree for the VM
# test, version VERSION, ready for `gostree commit --tree=dir=TREE`:
#   - kernel and initramfs in /usr/lib/modules/$kver/{vmlinuz,initramfs.img} (where ostree 2022.7
#     and gostree look first), an empty /boot, /etc moved to /usr/etc, no device nodes, fifos or
#     sockets, /var empty (its layout comes from tmpfiles.d), ostree's layout symlinks
#     (home -> var/home, ...), /sysroot and /ostree -> sysroot/ostree;
#   - /usr/etc/fstab: /boot by label, the config drive (label config-2) read-only at
#     /run/config-drive and the repository disk (label gostree-repo) read-only at /run/gostree-repo,
#     both optional (nofail: boot does not wait for them, the probe does; a unit that needs them
#     wants RequiresMountsFor=);
#   - the binaries of VM_DIR/bin (gostree, gostree-agent once cmd/gostree-agent exists, the test
#     helper vmbless) in /usr/bin, the units of contrib/systemd in /usr/lib/systemd/system;
#     gostree-finalize-staged.path enabled (ostree's own ostree-finalize-staged.path masked in
#     its favour), gostree-agent.service (+ gostree-healthcheck.service) only with --agent;
#   - the kvm modules blacklisted, getty-static masked, a serial getty on ttyS0;
#   - the test payload: /usr/lib/vmtest/version, /usr/etc/vmtest.conf (+ vmtest-added-in-vN.conf
#     for N > 1), the health check /usr/libexec/vmtest/health.sh (fails in a --health-fail tree)
#     and vmtest-probe.service (after multi-user.target: prints "VMTEST key=value" lines on the
#     console, edits /etc and /var, runs the config drive's vmtest/run.sh if there is one, and
#     powers off unless the config drive has vmtest/keep-running).
#     Without --agent the health check runs as vmtest-health.service (before multi-user.target;
#     a failure reboots: FailureAction=reboot) and the probe requires it. With --agent it is the
#     agent's required check (/etc/gostree/health/required.d/50-vmtest), vmtest-health.service is
#     not enabled, and --agent-config FILE becomes /etc/gostree/agent.yaml.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_need_root
[ $# -ge 3 ] || vm_die "usage: make-tree.sh ROOTFS TREE VERSION [--health-fail] [--agent] [--agent-config FILE]"
src=$1 dst=$2 ver=$3 health=ok agent=no agent_config=
shift 3
while [ $# -gt 0 ]; do
  case $1 in
    --health-fail) health=fail; shift ;;
    --agent) agent=yes; shift ;;
    --agent-config) agent_config=$2; shift 2 ;;
    *) vm_die "unknown option $1" ;;
  esac
done
[ -z "$agent_config" ] || [ -f "$agent_config" ] || vm_die "no agent configuration $agent_config"
[ -d "$src/usr/lib/modules" ] || vm_die "$src is not a root file system"
[ -x "$VM_DIR/bin/gostree" ] || vm_die "no $VM_DIR/bin/gostree: build the binaries first (vm_build_bins)"

rm -rf "$dst"
mkdir -p "$dst"
tar -C "$src" --numeric-owner --xattrs \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' \
    --exclude='./tmp/*' --exclude='./var/*' -cf - . | tar -C "$dst" --numeric-owner --xattrs -xpf -
cd "$dst"
kver=$(ls usr/lib/modules | sort | sed -n 1p)
mv "boot/vmlinuz-$kver" "usr/lib/modules/$kver/vmlinuz"
mv "boot/initrd.img-$kver" "usr/lib/modules/$kver/initramfs.img"
chmod 0644 "usr/lib/modules/$kver/initramfs.img"     # dracut writes 0600
rm -f vmlinuz vmlinuz.old initrd.img initrd.img.old
rm -rf boot && mkdir boot
mv etc usr/etc
cat >usr/etc/fstab <<'F'
LABEL=boot /boot ext4 defaults 0 2
LABEL=config-2 /run/config-drive iso9660 ro,nofail,x-systemd.device-timeout=120s 0 0
LABEL=gostree-repo /run/gostree-repo ext4 ro,noload,nofail,x-systemd.device-timeout=120s 0 0
F
echo gostree-vm >usr/etc/hostname
: >usr/etc/machine-id                             # generated at first boot, then kept by the /etc merge
sed -i 's/^root:[^:]*:/root::/' usr/etc/shadow    # root without password on the serial console
find . -xdev \( -type b -o -type c -o -type p -o -type s \) -delete
rm -rf home opt srv mnt media root usr/local tmp
ln -s var/home home; ln -s var/opt opt; ln -s var/srv srv; ln -s var/mnt mnt
ln -s run/media media; ln -s var/roothome root; ln -s ../var/usrlocal usr/local
mkdir -m 1777 tmp
mkdir sysroot && ln -s sysroot/ostree ostree     # ostree-prepare-root needs /sysroot
cat >usr/lib/tmpfiles.d/gostree-vm-layout.conf <<'T'
d /var/home 0755 root root -
d /var/roothome 0700 root root -
d /var/opt 0755 root root -
d /var/srv 0755 root root -
d /var/mnt 0755 root root -
d /var/usrlocal 0755 root root -
d /var/usrlocal/bin 0755 root root -
d /var/lib/vmtest 0755 root root -
T
printf 'blacklist kvm\nblacklist kvm_amd\nblacklist kvm_intel\n' >usr/lib/modprobe.d/gostree-vm-no-kvm.conf
# No dbus/logind in minbase: getty-static would start gettys on tty2..6 with delays. No VGA either.
ln -sf /dev/null usr/etc/systemd/system/getty-static.service
rm -f usr/etc/systemd/system/getty.target.wants/getty@tty1.service
mkdir -p usr/etc/systemd/system/getty.target.wants
ln -sf /usr/lib/systemd/system/serial-getty@.service usr/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service

# gostree: binaries and units. Every unit of contrib/systemd is installed; enabled (as its
# [Install] section says, Also= included) are gostree-finalize-staged.path and, with --agent,
# gostree-agent.service (which needs /usr/bin/gostree-agent).
for b in "$VM_DIR"/bin/*; do install -m 0755 "$b" "usr/bin/$(basename "$b")"; done
for u in "$vm_root"/contrib/systemd/*.service "$vm_root"/contrib/systemd/*.path "$vm_root"/contrib/systemd/*.timer; do
  [ -f "$u" ] || continue
  install -m 0644 "$u" usr/lib/systemd/system/
done
enable_unit() {
  local u=$1 f=usr/lib/systemd/system/$1 target also
  [ -f "$f" ] || return 0
  for target in $(sed -n 's/^WantedBy=//p' "$f"); do
    mkdir -p "usr/etc/systemd/system/$target.wants"
    ln -sf "/usr/lib/systemd/system/$u" "usr/etc/systemd/system/$target.wants/$u"
  done
  for target in $(sed -n 's/^RequiredBy=//p' "$f"); do
    mkdir -p "usr/etc/systemd/system/$target.requires"
    ln -sf "/usr/lib/systemd/system/$u" "usr/etc/systemd/system/$target.requires/$u"
  done
  for also in $(sed -n 's/^Also=//p' "$f"); do enable_unit "$also"; done
}
enable_unit gostree-finalize-staged.path
if [ -f usr/lib/systemd/system/gostree-finalize-staged.path ]; then
  # ostree-boot's generator enables its own ostree-finalize-staged.path on every booted
  # deployment; left alone it would race gostree's finalization at shutdown. Mask it.
  find usr/etc/systemd/system -name 'ostree-finalize-staged.path' -type l -delete
  ln -sf /dev/null usr/etc/systemd/system/ostree-finalize-staged.path
fi
if [ "$agent" = yes ]; then
  [ -x usr/bin/gostree-agent ] || vm_die "--agent: no gostree-agent in $VM_DIR/bin (cmd/gostree-agent)"
  enable_unit gostree-agent.service
fi

# The test payload.
mkdir -p usr/lib/vmtest usr/libexec/vmtest
echo "v$ver" >usr/lib/vmtest/version
echo "setting=default-from-v$ver" >usr/etc/vmtest.conf
[ "$ver" = 1 ] || echo "added-in-v$ver" >"usr/etc/vmtest-added-in-v$ver.conf"
[ "$health" = ok ] || echo "this tree's health check fails (make-tree.sh --health-fail)" >usr/lib/vmtest/health-fail

cat >usr/libexec/vmtest/health.sh <<'S'
#!/bin/bash
# Stand-in health check: fails when the tree was built with --health-fail.
if [ -e /usr/lib/vmtest/health-fail ]; then
  echo "VMTEST health=fail version=$(cat /usr/lib/vmtest/version)" >/dev/console
  exit 1
fi
echo "VMTEST health=ok version=$(cat /usr/lib/vmtest/version)" >/dev/console
S
cat >usr/libexec/vmtest/probe.sh <<'S'
#!/bin/bash
# VM probe: report the boot as "VMTEST key=value" lines on the console, change /etc and /var,
# run the config drive's vmtest/run.sh if any, power off unless vmtest/keep-running exists there.
exec >/dev/console 2>&1
say() { echo "VMTEST $*"; }
oneline() { tr '\n' '|' | sed 's/|$//'; }
ver=$(cat /usr/lib/vmtest/version)
# The optional disks are nofail mounts, which multi-user.target does not wait for, and a loaded
# host can take more than 10 s to give them their by-label links: wait for them here.
udevadm settle --timeout=120 || true
for m in config-2:/run/config-drive gostree-repo:/run/gostree-repo; do
  if [ -e "/dev/disk/by-label/${m%%:*}" ] && ! mountpoint -q "${m#*:}"; then
    systemctl start "$(systemd-escape --path --suffix=mount "${m#*:}")" || mount "${m#*:}" || true
  fi
done
say "begin version=$ver uptime=$(cut -d' ' -f1 /proc/uptime)"
say "version=$ver"
say "cmdline=$(cat /proc/cmdline)"
karg=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^ostree=//p')
# The booted deployment is the one whose directory is / (by device and inode): the ostree= karg
# names a bootlink, which a deploy made since boot may have repointed.
booted=none
for d in /sysroot/ostree/deploy/*/deploy/*/; do
  [ "$(stat -c %d:%i "$d")" = "$(stat -c %d:%i /)" ] && booted=$(basename "$d")
done
say "booted=$booted"
say "root_is_deployment=$([ "$(stat -c %d:%i /)" = "$(stat -c %d:%i "/sysroot$karg/")" ] && echo yes || echo no)"
say "run_ostree_booted=$([ -e /run/ostree-booted ] && echo yes || echo no)"
say "usr_readonly=$(touch /usr/.vmtest-w 2>/dev/null && echo no || echo yes)"
say "etc_vmtest_conf=$(oneline </etc/vmtest.conf)"
say "etc_added=$(cd /etc && ls vmtest-added-in-*.conf 2>/dev/null | oneline)"
say "var_marker=$(oneline </var/lib/vmtest/marker 2>/dev/null)"
say "failed_units=$(systemctl --failed --plain --no-legend --no-pager | awk '{print $1}' | oneline)"
say "grubenv=$(grep -a '^gostree_' /boot/grub/grubenv 2>/dev/null | oneline)"
say "entries=$(ls /boot/loader/entries | oneline)"
gostree admin status 2>&1 | sed 's/^/VMTEST| gostree: /'
ostree admin status 2>&1 | sed 's/^/VMTEST| ostree: /'
say "configdrive=$(findmnt -n -o SOURCE /run/config-drive || echo none)"
if [ -f /run/config-drive/openstack/latest/meta_data.json ]; then
  say "meta_data=$(oneline </run/config-drive/openstack/latest/meta_data.json)"
fi
say "repodisk=$(findmnt -n -o SOURCE /run/gostree-repo || echo none)"
if [ -d /run/gostree-repo/repo ]; then
  # A file:// pull of the commit metadata into a scratch repository (the sysroot is untouched).
  rm -rf /var/tmp/vmtest-pull && gostree --repo=/var/tmp/vmtest-pull init --mode=archive &&
    gostree --repo=/var/tmp/vmtest-pull remote add --no-gpg-verify disk file:///run/gostree-repo/repo &&
    gostree --repo=/var/tmp/vmtest-pull pull --commit-metadata-only disk "$(cat /run/gostree-repo/ref)" >/dev/null 2>&1 &&
    say "repo_pull=$(gostree --repo=/var/tmp/vmtest-pull rev-parse "disk:$(cat /run/gostree-repo/ref)")" || say "repo_pull=failed"
  rm -rf /var/tmp/vmtest-pull
fi
grep -q '^edited=' /etc/vmtest.conf || echo "edited=locally-in-$ver" >>/etc/vmtest.conf
echo "booted $ver" >>/var/lib/vmtest/marker
if [ -x /run/config-drive/vmtest/run.sh ]; then
  /run/config-drive/vmtest/run.sh 2>&1 | sed 's/^/VMTEST| run.sh: /'
  say "run_sh_exit=${PIPESTATUS[0]}"
fi
sync
say "end version=$ver uptime=$(cut -d' ' -f1 /proc/uptime)"
[ -e /run/config-drive/vmtest/keep-running ] || systemctl poweroff --no-block
S
chmod 0755 usr/libexec/vmtest/*.sh
cat >usr/lib/systemd/system/vmtest-health.service <<'U'
[Unit]
Description=vmtest: stand-in health check (fails in a --health-fail tree, which then reboots)
Before=multi-user.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/libexec/vmtest/health.sh
FailureAction=reboot
[Install]
WantedBy=multi-user.target
U
cat >usr/lib/systemd/system/vmtest-probe.service <<'U'
[Unit]
Description=vmtest: report the boot on the console, then power off
Requires=vmtest-health.service
After=vmtest-health.service multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/libexec/vmtest/probe.sh
[Install]
WantedBy=multi-user.target
U
mkdir -p usr/lib/systemd/system/multi-user.target.wants
ln -sf ../vmtest-probe.service usr/lib/systemd/system/multi-user.target.wants/vmtest-probe.service
if [ "$agent" = yes ]; then
  # The agent runs the health check (gostree-healthcheck.service, before boot-complete.target).
  sed -i '/^Requires=vmtest-health.service/d; s/^After=vmtest-health.service /After=/' usr/lib/systemd/system/vmtest-probe.service
  install -D -m 0755 usr/libexec/vmtest/health.sh usr/etc/gostree/health/required.d/50-vmtest
  [ -z "$agent_config" ] || install -D -m 0600 "$agent_config" usr/etc/gostree/agent.yaml
else
  ln -sf ../vmtest-health.service usr/lib/systemd/system/multi-user.target.wants/vmtest-health.service
fi
vm_log "tree $dst: v$ver (kernel $kver, health $health, agent $agent)"
