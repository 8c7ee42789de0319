#!/usr/bin/env bash
# scripts/with-openstack.sh CMD... — run CMD with the local OpenStack of scripts/openstack-up.sh
# running and GOSTREE_OPENSTACK_RC pointing at its openrc, so the Swift, Glance and Heat tests
# run against real Keystone, Glance, Swift and Heat (`make test` runs `go test` through this).
#
# Starts the services (installing their Debian packages on a fresh machine) unless
# GOSTREE_OPENSTACK_RC is already set; stops them afterwards only if this run started them, so a
# developer's running instance is left alone. GOSTREE_OPENSTACK=0 runs CMD without OpenStack
# (the OpenStack tests then skip, or fail under CI=true).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${GOSTREE_OPENSTACK_RC:-}" ] || [ "${GOSTREE_OPENSTACK:-1}" = 0 ]; then
  exec "$@"
fi
STATE=${GOSTREE_OPENSTACK_STATE:-$root/_build/openstack}
running=0
if [ -s "$STATE/run/keystone.pid" ] && kill -0 "$(cat "$STATE/run/keystone.pid")" 2>/dev/null; then
  running=1
fi
start=$SECONDS
bash "$root/scripts/openstack-up.sh" "$STATE"
echo "with-openstack: Keystone, Glance, Swift and Heat ready in $((SECONDS - start)) s (state $STATE)"
if [ $running = 0 ]; then
  trap 'bash "$root/scripts/openstack-down.sh" "$STATE"' EXIT
fi
export GOSTREE_OPENSTACK_RC=$STATE/openrc
"$@"
