#!/usr/bin/env bash
# scripts/deps.sh — install what gostree's tests, demo and benchmarks need on Debian 12.
#
# Idempotent and quick: when every package is already installed it only checks and exits;
# `apt-get update` and `apt-get install` run only when something is missing.
# Services are never started by the install: nginx is only used by tests that start their own
# instances on 127.0.0.1 with their own configuration.
# Go is not a Debian package here (Debian 12's is too old): it must be at /usr/local/go or on PATH.
set -euo pipefail

# The tools the project uses, as Debian packages:
#   ostree          the reference implementation (interop tests, bench-compare, demo)
#   nginx           HTTP server for pull tests (started by the tests themselves)
#   mmdebstrap      builds the Debian trees (scripts/make-trees.sh)
#   attr            getfattr/setfattr for xattr checks
#   gnupg           GPG keys and signatures for signed commits and summaries
#   xz-utils        compressed fixtures
#   e2fsprogs       mkfs.ext4/lsattr for scratch file systems and sysroots
#   ca-certificates, curl   HTTPS and HTTP checks from scripts and tests
#   make            the project's entry points (Makefile)
#   time            /usr/bin/time for peak RSS in the benchmarks
#   systemd         systemd-analyze and systemctl --root for the unit tests of contrib/systemd
#   grub-common     grub-script-check and grub-editenv: the sysroot tests check the grub.cfg and grubenv gostree writes
packages=(ostree nginx mmdebstrap attr gnupg xz-utils e2fsprogs ca-certificates curl make time systemd grub-common)

# Opt-in, `scripts/deps.sh --openstack`: Debian's OpenStack services (Zed) for the Swift and Glance
# tests. scripts/openstack-up.sh runs this itself when one is missing, so a plain `make deps` stays
# quick. No service is started by the install (policy-rc.d below); the project starts its own.
#   keystone, glance-api, swift-{proxy,account,container,object}, uwsgi-plugin-python3 (runs keystone),
#   procps (ps, for openstack-down.sh)
#   heat-common (heat-all: Heat's api, api-cfn and engine in one process, and heat-manage)
#   memcached (the Swift proxy's account/container info cache, as in any real deployment)
openstack_packages=(keystone glance-api swift-proxy swift-account swift-container swift-object uwsgi-plugin-python3 procps heat-common memcached)
# Opt-in, `scripts/deps.sh --vm`: the real-VM end-to-end test (`make e2e`, scripts/vm/, e2e/).
#   qemu-system-x86 (TCG; no KVM needed), grub-pc-bin (GRUB for BIOS: i386-pc modules, boot.img),
#   genisoimage (the config drive), fdisk (sfdisk: checks of the MBR), jq (the agent scenario reads
#   `gostree-agent status --json`), openssl (its ed25519 signing key); mmdebstrap (the guest's
#   Debian tree) is in the default set
vm_packages=(qemu-system-x86 grub-pc-bin genisoimage fdisk jq openssl)
for arg in "$@"; do
  case $arg in
    --openstack) packages+=("${openstack_packages[@]}") ;;
    --vm) packages+=("${vm_packages[@]}") ;;
    *) printf 'deps: error: unknown argument %s (only --openstack, --vm)\n' "$arg" >&2; exit 2 ;;
  esac
done

log() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

[ -r /etc/debian_version ] || die "this script supports Debian 12 (bookworm) only"

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  log "all ${#packages[@]} Debian packages present (${packages[*]})"
else
  log "installing: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install as root: apt-get install -y ${missing[*]}"
    sudo=(sudo)
  fi
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  logdir=${GOSTREE_LOGDIR:-$root/_build/logs}
  mkdir -p "$logdir"
  aptlog=$logdir/deps-apt.log
  : >"$aptlog"

  # Keep maintainer scripts from starting services (nginx on :80) during the install:
  # a policy-rc.d that answers 101 ("action forbidden"), removed again afterwards if it is ours.
  policy=/usr/sbin/policy-rc.d
  ours_policy=0
  if [ ! -e "$policy" ]; then
    "${sudo[@]}" sh -c "printf '#!/bin/sh\n# temporary, from gostree scripts/deps.sh\nexit 101\n' >$policy && chmod 755 $policy"
    ours_policy=1
  fi
  cleanup() { if [ "$ours_policy" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi; }
  trap cleanup EXIT

  apt_env=(env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a)
  # Wait for another apt/dpkg run (e.g. unattended-upgrades at boot) instead of failing.
  apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  start=$SECONDS
  if ! "${sudo[@]}" "${apt_env[@]}" apt-get -q -o DPkg::Lock::Timeout=600 update </dev/null >>"$aptlog" 2>&1; then
    cat "$aptlog" >&2
    die "apt-get update failed (log: $aptlog)"
  fi
  if ! "${sudo[@]}" "${apt_env[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}" </dev/null >>"$aptlog" 2>&1; then
    cat "$aptlog" >&2
    die "apt-get install failed (log: $aptlog)"
  fi
  # On a systemd machine, make sure nginx's system service stays off (tests run their own).
  if [[ " ${missing[*]} " == *" nginx "* ]] && [ -d /run/systemd/system ]; then
    "${sudo[@]}" systemctl disable --now nginx.service >>"$aptlog" 2>&1 || true
  fi
  log "installed in $((SECONDS - start)) s: $(dpkg-query -W -f='${Package} ${Version}, ' "${missing[@]}" | sed 's/, $//')"
fi

# Go: a toolchain recent enough for go.mod (installed at /usr/local/go on the project's machines).
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null; then
  die "go not found: install Go (>= the version in go.mod) at /usr/local/go and add /usr/local/go/bin to PATH"
fi
have=$(go env GOVERSION | sed 's/^go//')
root=${root:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
need=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' "$root/go.mod" 2>/dev/null | sed -n 1p)
if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | sed -n 1p)" != "$need" ]; then
  die "go $have at $(command -v go) is older than go.mod's go $need: install Go $need or newer at /usr/local/go"
fi
log "go $have at $(command -v go)${need:+ (go.mod wants >= $need)}"
