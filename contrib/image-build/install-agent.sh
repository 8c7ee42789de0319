#!/usr/bin/env bash
# contrib/image-build/install-agent.sh ROOT [BINDIR] — preinstall gostree-agent into an OS tree
# before it is committed (e.g. from a mmdebstrap --customize-hook, a diskimage-builder element or a
# Dockerfile-like build step), so every instance booted from the image runs the agent:
#   - ROOT/usr/bin/{gostree,gostree-agent} from BINDIR (default: the project's bin/);
#   - the units of contrib/systemd in ROOT/usr/lib/systemd/system, enabled with
#     `systemctl --root` (gostree-agent, gostree-healthcheck, gostree-finalize-staged.path);
#   - the documented sample configuration as ROOT/etc/gostree/agent.yaml (an OSTree commit keeps
#     it as the default in /usr/etc; instances get it merged into their /etc), the health check
#     directories, and /etc/gostree/agent.yaml.d for site drop-ins (see
#     contrib/cloud-init/gostree-agent.yaml for one written at first boot).
# The agent then bootstraps from heat_local or the config drive, as os-collect-config did.
# Idempotent. Needs systemctl (package systemd) on the build host.
set -euo pipefail
root=${1:?usage: install-agent.sh ROOT [BINDIR]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bindir=${2:-$here/bin}
for b in gostree gostree-agent; do
  [ -x "$bindir/$b" ] || { echo "install-agent: $bindir/$b missing (make build)" >&2; exit 1; }
done
install -D -m 0755 "$bindir/gostree" "$root/usr/bin/gostree"
install -D -m 0755 "$bindir/gostree-agent" "$root/usr/bin/gostree-agent"
units=$root/usr/lib/systemd/system
mkdir -p "$units"
for u in "$here"/contrib/systemd/*.service "$here"/contrib/systemd/*.path; do
  install -m 0644 "$u" "$units/$(basename "$u")"
done
install -D -m 0644 "$here/etc/gostree/agent.yaml" "$root/etc/gostree/agent.yaml"
install -d -m 0755 "$root/etc/gostree/agent.yaml.d" "$root/etc/gostree/health/required.d" "$root/etc/gostree/health/wanted.d"
systemctl --root="$root" enable gostree-agent.service gostree-healthcheck.service gostree-finalize-staged.path >/dev/null
echo "install-agent: gostree-agent installed and enabled in $root"
