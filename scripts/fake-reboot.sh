#!/usr/bin/env bash
# scripts/fake-reboot.sh SYSROOT — stands in for `systemctl reboot` where there is no machine to
# reboot (make demo, the agent's Heat test): it does what a reboot of an OSTree system does to a
# scratch sysroot made to look booted through gostree's test hooks.
#   1. shutdown: gostree-finalize-staged.service finalizes the staged deployment (if any);
#   2. boot: the bootloader starts the default entry; $GOSTREE_ROOT_DIR (a symlink standing for /)
#      is pointed at that deployment, /run is emptied but for ostree-booted, and a new boot id is
#      written to $GOSTREE_BOOT_ID_FILE.
# The agent runs its reboot command with its own environment, so the hooks it uses are set here.
set -euo pipefail
sysroot=${1:?usage: fake-reboot.sh SYSROOT}
: "${GOSTREE_RUN_DIR:?}" "${GOSTREE_ROOT_DIR:?}" "${GOSTREE_BOOT_ID_FILE:?}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gostree=${GOSTREE:-$here/../bin/gostree}
if [ -e "$GOSTREE_RUN_DIR/ostree/staged-deployment" ]; then
  "$gostree" admin finalize-staged --sysroot="$sysroot"
fi
# the default deployment: the first one admin status lists that is not staged
dep=$("$gostree" admin status --sysroot="$sysroot" |
  sed -nE '/\(staged\)/d; s/^[* ] +([^ ]+) ([0-9a-f]{64}\.[0-9]+).*/\1\/deploy\/\2/p' | head -n1)
[ -n "$dep" ] || { echo "fake-reboot: no deployment to boot" >&2; exit 1; }
path=$sysroot/ostree/deploy/$dep
[ -d "$path" ] || { echo "fake-reboot: $path missing" >&2; exit 1; }
ln -sfn "$path" "$GOSTREE_ROOT_DIR.new" && mv -T "$GOSTREE_ROOT_DIR.new" "$GOSTREE_ROOT_DIR"
find "$GOSTREE_RUN_DIR" -mindepth 1 -maxdepth 1 ! -name ostree-booted -exec rm -rf {} +
cat /proc/sys/kernel/random/uuid >"$GOSTREE_BOOT_ID_FILE"
echo "fake-reboot: booted $dep"
