#!/usr/bin/env bash
# scripts/openstack-smoke.sh [STATE_DIR] — check the services of scripts/openstack-up.sh as the
# unprivileged demo user: a Keystone token and catalog, a Glance image upload/download with a
# custom property, Swift object PUT/GET with a token, sha256/sha512 TempURLs accepted and sha1
# refused, anonymous reads refused until the container is public-read, and (when the catalog has
# Heat) an OS::Heat::DeployedServer stack whose metadata reaches Swift's POLL_TEMP_URL copy and
# follows a stack update. Exits non-zero on failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${1:-${GOSTREE_OPENSTACK_STATE:-$root/_build/openstack}}
[ -r "$STATE/openrc" ] || { echo "openstack-smoke: no $STATE/openrc: run scripts/openstack-up.sh first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$STATE/openrc"
exec /usr/bin/python3 "$root/scripts/openstack-setup.py" smoke
