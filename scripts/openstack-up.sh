#!/usr/bin/env bash
# scripts/openstack-up.sh [STATE_DIR] — a throwaway OpenStack for gostree's Swift and Glance tests.
#
# Starts REAL services from Debian 12's packages (OpenStack Zed), all on 127.0.0.1 only:
#   Keystone  identity v3 (uwsgi, one process, fernet tokens)
#   Glance    image v2, file store
#   Swift     proxy + account/container/object servers, one device, one replica;
#             keystoneauth, tempurl (sha256/sha512 only), staticweb, bulk, slo/dlo; memcached
#             (127.0.0.1 only) caches account/container info and tokens for the proxy
#   Heat      orchestration v1 + CFN API as ONE heat-all process (api, api-cfn, engine) with
#             oslo.messaging's in-process fake:// transport (no RabbitMQ); stack-user domain
#             "heat"; OS::Heat::DeployedServer + software deployments work without Nova
# Every service uses sqlite (in WAL mode) and keeps all of its state in STATE_DIR
# (default: $GOSTREE_OPENSTACK_STATE, else _build/openstack in the work tree): configs, rings,
# data, logs, pid files. Nothing under /etc is changed. Services run without systemd: each is
# started with setsid (its own process group) and a pid file; scripts/openstack-down.sh stops
# exactly those pids. Every wait is bounded ($GOSTREE_OS_TIMEOUT seconds, default 120).
#
# Idempotent: a second run keeps what is healthy and (re)starts what is not.
#
# Written to STATE_DIR for clients (files holding secrets are 0600):
#   openrc        `. openrc` → OS_* for the unprivileged user "demo" in project "demo" (member)
#   openrc-admin  the same for "admin"
#   clouds.yaml   clouds "gostree" (demo) and "gostree-admin": OS_CLIENT_CONFIG_FILE=… OS_CLOUD=gostree
#   ports.env     the ports below
#   timings.txt   how long each step took
# The demo account has a Swift TempURL key (OS_SWIFT_TEMPURL_KEY in openrc).
#
# Ports (env overrides): GOSTREE_OS_KEYSTONE_PORT 15000, GOSTREE_OS_GLANCE_PORT 19292,
# GOSTREE_OS_SWIFT_PORT 18080, GOSTREE_OS_SWIFT_{OBJECT,CONTAINER,ACCOUNT}_PORT 16200/16201/16202,
# GOSTREE_OS_HEAT_PORT 18004, GOSTREE_OS_HEAT_CFN_PORT 18000, GOSTREE_OS_MEMCACHED_PORT (default
# Swift's port - 6869: 11211, so instances on other ports do not share it). GOSTREE_OS_HEAT=0
# leaves Heat out. GOSTREE_OS_SWIFT_WORKERS (default 0: one process, no fork): worker processes of
# the Swift proxy and object server; on 2 cores 2 workers cost 30 % more CPU per request than one
# process (scripts/bench-swift.sh, 5000-object push and pulls) and were not faster.
# They sit below Linux's ephemeral range (32768+), so test servers on "any free port" never take them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${1:-${GOSTREE_OPENSTACK_STATE:-$root/_build/openstack}}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
H=127.0.0.1
KEYSTONE_PORT=${GOSTREE_OS_KEYSTONE_PORT:-15000}
GLANCE_PORT=${GOSTREE_OS_GLANCE_PORT:-19292}
SWIFT_PORT=${GOSTREE_OS_SWIFT_PORT:-18080}
SWIFT_OBJECT_PORT=${GOSTREE_OS_SWIFT_OBJECT_PORT:-16200}
SWIFT_CONTAINER_PORT=${GOSTREE_OS_SWIFT_CONTAINER_PORT:-16201}
SWIFT_ACCOUNT_PORT=${GOSTREE_OS_SWIFT_ACCOUNT_PORT:-16202}
HEAT_PORT=${GOSTREE_OS_HEAT_PORT:-18004}
HEAT_CFN_PORT=${GOSTREE_OS_HEAT_CFN_PORT:-18000}
MEMCACHED_PORT=${GOSTREE_OS_MEMCACHED_PORT:-$((SWIFT_PORT - 6869))}
SWIFT_WORKERS=${GOSTREE_OS_SWIFT_WORKERS:-0}
WITH_HEAT=${GOSTREE_OS_HEAT:-1}
TIMEOUT=${GOSTREE_OS_TIMEOUT:-120}
PY=/usr/bin/python3 # the services' own Python, not whatever python3 is first on PATH
KS_URL=http://$H:$KEYSTONE_PORT/v3

ETC=$STATE/etc RUN=$STATE/run LOG=$STATE/log DATA=$STATE/data
umask 022
mkdir -p "$ETC"/{keystone,glance,swift,heat} "$RUN" "$LOG" \
  "$DATA"/{keystone/fernet-keys,keystone/credential-keys,glance/images,glance/staging,glance/tasks,glance/cache,swift/devices/d1,swift/cache,lock}
chmod 700 "$DATA"/keystone/fernet-keys "$DATA"/keystone/credential-keys

log() { printf '[openstack-up %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
TIMINGS=$STATE/timings.txt
T0=$(now)
took() { # took LABEL START
  local d
  d=$(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  printf '%s: %ss\n' "$1" "$d" >>"$TIMINGS"
  log "$1: ${d}s"
}
printf '# %s openstack-up.sh %s\n' "$(date -u +%FT%TZ)" "$STATE" >>"$TIMINGS"

# ------------------------------------------------------------------------------------- packages
t=$(now)
need_bins=(memcached keystone-manage uwsgi glance-api glance-manage swift-proxy-server swift-object-server
  swift-container-server swift-account-server swift-ring-builder ps)
[ "$WITH_HEAT" = 1 ] && need_bins+=(heat-all heat-manage)
missing=()
for b in "${need_bins[@]}"; do command -v "$b" >/dev/null || missing+=("$b"); done
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing+=(uwsgi-plugin-python3)
if [ ${#missing[@]} -gt 0 ]; then
  log "missing ${missing[*]}: running scripts/deps.sh --openstack"
  bash "$root/scripts/deps.sh" --openstack >&2
fi
took "packages" "$t"

# ------------------------------------------------------------------------------------- secrets
# Generated once per state dir and kept (0600), so re-runs and restarts keep working.
SECRETS=$STATE/secrets.env
if [ ! -s "$SECRETS" ]; then
  gen() { head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 24; }
  (umask 077 && printf 'ADMIN_PASSWORD=%s\nDEMO_PASSWORD=%s\nSERVICE_PASSWORD=%s\nTEMPURL_KEY=%s\n' \
    "$(gen)" "$(gen)" "$(gen)" "$(gen)" >"$SECRETS.tmp" && mv "$SECRETS.tmp" "$SECRETS")
fi
# shellcheck disable=SC1090
. "$SECRETS"

# ------------------------------------------------------------------------------------- helpers
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }
running() { # running NAME: its pid file names a live process whose command line mentions STATE
  local pid
  [ -s "$RUN/$1.pid" ] || return 1
  pid=$(cat "$RUN/$1.pid")
  kill -0 "$pid" 2>/dev/null && cmdline "$pid" | grep -qF "$STATE"
}
listening() { (exec 3<>"/dev/tcp/$H/$1") 2>/dev/null; }
launch() { # launch NAME PORT CMD...: in its own session (setsid) with a pid file and a log file
  local name=$1 port=$2
  shift 2
  if running "$name"; then
    log "$name already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  listening "$port" && die "$H:$port (for $name) is held by a process this script did not start"
  # A background job of a non-interactive shell is not a group leader, so setsid does not fork
  # again and $! is the service's own pid, which is also its process group id.
  setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  log "started $name (pid $!)"
}
await() { # await NAME URL: until URL answers 2xx/3xx/401, the service dies, or TIMEOUT passes
  local name=$1 url=$2 code i
  for ((i = 0; i < TIMEOUT * 4; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)
    case $code in 2?? | 3?? | 401) return 0 ;; esac
    if ! running "$name"; then
      tail -n 40 "$LOG/$name.log" >&2
      die "$name exited while starting (log: $LOG/$name.log)"
    fi
    sleep 0.25
  done
  tail -n 40 "$LOG/$name.log" >&2
  die "$name: no answer from $url after ${TIMEOUT}s (log: $LOG/$name.log)"
}
wal() { # sqlite's rollback journal makes keystone's own open read transaction block its
  # commit in the same request ("database is locked" after 5 s): WAL mode avoids that.
  "$PY" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL").fetchall()' "$1"
}
authtoken() { # the [keystone_authtoken] body for service user $1
  cat <<EOF
www_authenticate_uri = http://$H:$KEYSTONE_PORT
auth_url = http://$H:$KEYSTONE_PORT
auth_type = password
user_domain_name = Default
project_domain_name = Default
project_name = service
username = $1
password = $SERVICE_PASSWORD
service_token_roles_required = true
EOF
}

# ------------------------------------------------------------------------------------- configs
t=$(now)
(
  umask 077 # the configs hold the service password
  cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOG/keystone-app.log
[database]
connection = sqlite:///$DATA/keystone.sqlite
[token]
provider = fernet
expiration = 86400
[fernet_tokens]
key_repository = $DATA/keystone/fernet-keys
[fernet_receipts]
key_repository = $DATA/keystone/fernet-keys
[credential]
key_repository = $DATA/keystone/credential-keys
# Heat's stack users get EC2 credentials right before they are used (CFN API, CFN signals);
# a cached credential list made /v3/ec2tokens miss them.
caching = false
[cache]
# In-process cache (one uwsgi worker, so it is coherent): cuts ~250 ms from every request.
enabled = true
backend = dogpile.cache.memory
[oslo_policy]
policy_dirs = $ETC/keystone/policy.d
EOF

  cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
bind_host = $H
bind_port = $GLANCE_PORT
workers = 0
log_file = $LOG/glance-app.log
enabled_backends = fs:file
image_cache_dir = $DATA/glance/cache
[database]
connection = sqlite:///$DATA/glance.sqlite
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $DATA/glance/images/
[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks/
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $DATA/lock
[oslo_policy]
policy_dirs = $ETC/glance/policy.d
[keystone_authtoken]
$(authtoken glance)
EOF

  SW=$ETC/swift
  # The proxy and the object server get SWIFT_WORKERS worker processes (0: one, no fork).
  for spec in object:$SWIFT_OBJECT_PORT container:$SWIFT_CONTAINER_PORT account:$SWIFT_ACCOUNT_PORT; do
    kind=${spec%%:*} port=${spec##*:} workers=0
    [ "$kind" = object ] && workers=$SWIFT_WORKERS
    cat >"$SW/$kind-server.conf" <<EOF
[DEFAULT]
bind_ip = $H
bind_port = $port
workers = $workers
user = $(id -un)
swift_dir = $SW
devices = $DATA/swift/devices
mount_check = false
log_name = swift-$kind
recon_cache_path = $DATA/swift/cache
[pipeline:main]
pipeline = healthcheck $kind-server
[app:$kind-server]
use = egg:swift#$kind
[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done
  cat >"$SW/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = $H
bind_port = $SWIFT_PORT
workers = $SWIFT_WORKERS
user = $(id -un)
swift_dir = $SW
log_name = swift-proxy
[pipeline:main]
# "cache" (memcached): without it every object request made the proxy HEAD the account and the
# container first (3 requests per object instead of 1).
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl authtoken keystoneauth staticweb copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
# sha1 is deprecated: accept only what gostree signs with.
allowed_digests = sha256 sha512
[filter:cache]
use = egg:swift#memcache
memcache_servers = $H:$MEMCACHED_PORT
# The default pool (2 connections per worker) runs dry under a pull's 32 concurrent requests:
# "Timeout getting a connection to memcached", then the server is error-limited for 60 s.
memcache_max_connections = 64
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
$(authtoken swift)
# anonymous requests must reach tempurl/staticweb/public-read ACLs
delay_auth_decision = true
[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member, swiftoperator
reseller_admin_role = ResellerAdmin
[filter:staticweb]
use = egg:swift#staticweb
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF

  if [ "$WITH_HEAT" = 1 ]; then cat >"$ETC/heat/heat.conf"; fi <<EOF
[DEFAULT]
log_file = $LOG/heat-app.log
# One process: the fake:// transport is in-memory and does not cross a fork, so api, api-cfn and
# engine run in heat-all with one worker each.
transport_url = fake:/
num_engine_workers = 1
host = gostree-loopback
region_name_for_services = RegionOne
heat_metadata_server_url = http://$H:$HEAT_CFN_PORT
heat_waitcondition_server_url = http://$H:$HEAT_CFN_PORT/v1/waitcondition
stack_user_domain_name = heat
stack_domain_admin = heat_domain_admin
stack_domain_admin_password = $SERVICE_PASSWORD
# The convergence engine, Zed's default, as real clouds run it. On sqlite it needs the
# AUTOINCREMENT ids openstack-setup.py sqlite-autoincrement gives heat.sqlite (see there).
convergence_engine = true
# oslo.service gives in-flight work 60 s on SIGTERM by default.
graceful_shutdown_timeout = 3
[heat_all]
enabled_services = api,api_cfn,engine
[heat_api]
bind_host = $H
bind_port = $HEAT_PORT
workers = 1
[heat_api_cfn]
bind_host = $H
bind_port = $HEAT_CFN_PORT
workers = 1
[paste_deploy]
api_paste_config = /etc/heat/api-paste.ini
[database]
connection = sqlite:///$DATA/heat.sqlite
[oslo_messaging_notifications]
driver = noop
[oslo_concurrency]
lock_path = $DATA/lock
[oslo_policy]
policy_dirs = $ETC/heat/policy.d
[clients]
endpoint_type = public
[clients_keystone]
auth_uri = http://$H:$KEYSTONE_PORT
[ec2authtoken]
auth_uri = $KS_URL
[trustee]
auth_type = password
auth_url = http://$H:$KEYSTONE_PORT
username = heat
password = $SERVICE_PASSWORD
user_domain_name = Default
[keystone_authtoken]
$(authtoken heat)
EOF
)
mkdir -p "$ETC"/{keystone,glance,heat}/policy.d
# heat-api-cfn checks EC2 signatures (CFN metadata, CFN signals) by POSTing them to Keystone's
# /v3/ec2tokens without a token of its own; Keystone 22 allows that call to admins only.
if [ "$WITH_HEAT" = 1 ]; then cat >"$ETC/keystone/policy.d/gostree-ec2tokens.yaml"; fi <<EOF
"identity:ec2tokens_validate": ""
EOF
# Rings: one device, one replica, 2^8 partitions. Rebuilt only when a port changed.
for spec in object:$SWIFT_OBJECT_PORT container:$SWIFT_CONTAINER_PORT account:$SWIFT_ACCOUNT_PORT; do
  kind=${spec%%:*} port=${spec##*:}
  ring=$ETC/swift/$kind.ring.gz
  if [ ! -s "$ring" ] || [ "$(cat "$ETC/swift/$kind.ring-port" 2>/dev/null)" != "$port" ]; then
    rm -f "$ETC/swift/$kind.builder" "$ring"
    swift-ring-builder "$ETC/swift/$kind.builder" create 8 1 1 >/dev/null
    swift-ring-builder "$ETC/swift/$kind.builder" add "r1z1-$H:$port/d1" 1 >/dev/null
    swift-ring-builder "$ETC/swift/$kind.builder" rebalance >/dev/null ||
      [ -s "$ring" ] || die "swift-ring-builder rebalance of the $kind ring failed"
    echo "$port" >"$ETC/swift/$kind.ring-port"
  fi
done
took "configs and swift rings" "$t"

# ------------------------------------------------------------------------------------- heat database
# heat-manage db_sync (about 4 s of Python) needs nothing but its config: it runs in the
# background while keystone is set up, on the other core, and is waited for before heat starts.
heat_sync_pid=
if [ "$WITH_HEAT" = 1 ] && [ ! -e "$DATA/heat.ready" ]; then
  rm -f "$DATA/heat.sqlite"* # a half-done sync from an interrupted run
  heat-manage --config-file "$ETC/heat/heat.conf" db_sync >>"$LOG/heat-manage.log" 2>&1 &
  heat_sync_pid=$!
fi

# ------------------------------------------------------------------------------------- keystone
t=$(now)
if [ ! -e "$DATA/keystone.ready" ]; then
  km=(keystone-manage --config-file "$ETC/keystone/keystone.conf")
  {
    "${km[@]}" db_sync
    "${km[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    "${km[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    "${km[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-username admin \
      --bootstrap-project-name admin --bootstrap-role-name admin \
      --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
      --bootstrap-admin-url "$KS_URL" --bootstrap-internal-url "$KS_URL" --bootstrap-public-url "$KS_URL"
  } >>"$LOG/keystone-manage.log" 2>&1 || {
    tail -n 30 "$LOG/keystone-manage.log" >&2
    die "keystone-manage failed (log: $LOG/keystone-manage.log)"
  }
  touch "$DATA/keystone.ready"
fi
wal "$DATA/keystone.sqlite"
took "keystone database" "$t"

t=$(now)
# uwsgi: "Connection: close" because its http-socket closes after each response without saying
# so, and a client reusing the connection then gets "connection reset".
launch keystone "$KEYSTONE_PORT" uwsgi --plugin python3 --http-socket "$H:$KEYSTONE_PORT" \
  --wsgi-file /usr/bin/keystone-wsgi-public --master --processes 1 --threads 1 --enable-threads \
  --lazy-apps --die-on-term --no-orphans --buffer-size 65535 --add-header "Connection: close" \
  --env "OS_KEYSTONE_CONFIG_FILES=$ETC/keystone/keystone.conf" --chdir "$STATE"
await keystone "$KS_URL"
took "keystone up" "$t"

# ------------------------------------------------------------------------------------- identity
t=$(now)
export GOSTREE_OS_KS_URL=$KS_URL GOSTREE_OS_ADMIN_PASSWORD=$ADMIN_PASSWORD \
  GOSTREE_OS_DEMO_PASSWORD=$DEMO_PASSWORD GOSTREE_OS_SERVICE_PASSWORD=$SERVICE_PASSWORD \
  GOSTREE_OS_TEMPURL_KEY=$TEMPURL_KEY \
  GOSTREE_OS_IMAGE_URL=http://$H:$GLANCE_PORT \
  GOSTREE_OS_SWIFT_URL="http://$H:$SWIFT_PORT/v1/AUTH_%(project_id)s" \
  GOSTREE_OS_HEAT_URL='' GOSTREE_OS_HEAT_CFN_URL=''
if [ "$WITH_HEAT" = 1 ]; then
  GOSTREE_OS_HEAT_URL="http://$H:$HEAT_PORT/v1/%(project_id)s" GOSTREE_OS_HEAT_CFN_URL="http://$H:$HEAT_CFN_PORT/v1"
fi
ids=$("$PY" "$root/scripts/openstack-setup.py" identity) || die "identity setup failed"
eval "$ids" # demo_project_id=… admin_project_id=…
took "projects, users, roles, catalog" "$t"

# ------------------------------------------------------------------------------------- glance, swift
t=$(now)
if [ ! -e "$DATA/glance.ready" ]; then
  glance-manage --config-file "$ETC/glance/glance-api.conf" db_sync >>"$LOG/glance-manage.log" 2>&1 || {
    tail -n 30 "$LOG/glance-manage.log" >&2
    die "glance-manage db_sync failed (log: $LOG/glance-manage.log)"
  }
  touch "$DATA/glance.ready"
fi
wal "$DATA/glance.sqlite"
took "glance database" "$t"

t=$(now)
launch glance "$GLANCE_PORT" glance-api --config-file "$ETC/glance/glance-api.conf"
launch swift-account "$SWIFT_ACCOUNT_PORT" swift-account-server "$ETC/swift/account-server.conf" --verbose
launch swift-container "$SWIFT_CONTAINER_PORT" swift-container-server "$ETC/swift/container-server.conf" --verbose
launch swift-object "$SWIFT_OBJECT_PORT" swift-object-server "$ETC/swift/object-server.conf" --verbose
# memcached: -P only puts STATE in its command line (running() checks it); it writes no pid file
# without -d, its pid file is launch's.
launch memcached "$MEMCACHED_PORT" memcached -l "$H" -p "$MEMCACHED_PORT" -U 0 -m 64 -c 1024 \
  -u "$(id -un)" -P "$RUN/memcached.pid"
for ((i = 0; i < TIMEOUT * 4; i++)); do listening "$MEMCACHED_PORT" && break; sleep 0.25; done
listening "$MEMCACHED_PORT" || die "memcached: not listening on $H:$MEMCACHED_PORT (log: $LOG/memcached.log)"
launch swift-proxy "$SWIFT_PORT" swift-proxy-server "$ETC/swift/proxy-server.conf" --verbose
if [ "$WITH_HEAT" = 1 ]; then
  th=$(now)
  if [ -n "$heat_sync_pid" ]; then
    wait "$heat_sync_pid" || {
      tail -n 30 "$LOG/heat-manage.log" >&2
      die "heat-manage db_sync failed (log: $LOG/heat-manage.log)"
    }
    touch "$DATA/heat.ready"
  fi
  if ! running heat; then
    "$PY" "$root/scripts/openstack-setup.py" sqlite-autoincrement "$DATA/heat.sqlite" ||
      die "making heat.sqlite's ids AUTOINCREMENT failed"
  fi
  wal "$DATA/heat.sqlite"
  took "heat database (waited for the background db_sync)" "$th"
  running heat || ! listening "$HEAT_CFN_PORT" ||
    die "$H:$HEAT_CFN_PORT (for heat-api-cfn) is held by a process this script did not start"
  launch heat "$HEAT_PORT" heat-all --config-file "$ETC/heat/heat.conf"
fi
await swift-account "http://$H:$SWIFT_ACCOUNT_PORT/healthcheck"
await swift-container "http://$H:$SWIFT_CONTAINER_PORT/healthcheck"
await swift-object "http://$H:$SWIFT_OBJECT_PORT/healthcheck"
await swift-proxy "http://$H:$SWIFT_PORT/healthcheck"
took "swift up" "$t"
"$PY" "$root/scripts/openstack-setup.py" swift || die "swift account setup failed"
await glance "http://$H:$GLANCE_PORT/"
took "glance up (since launch)" "$t"
if [ "$WITH_HEAT" = 1 ]; then
  await heat "http://$H:$HEAT_PORT/"
  await heat "http://$H:$HEAT_CFN_PORT/"
  # The engine is up when an authenticated stack list (api -> fake RPC -> engine) answers 200.
  "$PY" "$root/scripts/openstack-setup.py" heat-ready "http://$H:$HEAT_PORT/v1" "$TIMEOUT" \
    "$RUN/heat.pid" || {
    tail -n 40 "$LOG/heat.log" >&2
    die "heat-engine does not answer a stack list (log: $LOG/heat.log, $LOG/heat-app.log)"
  }
  took "heat up (since launch of glance and swift)" "$t"
fi

# ------------------------------------------------------------------------------------- clients
t=$(now)
openrc() { # openrc USER PASSWORD PROJECT PROJECT_ID
  cat <<EOF
# Written by scripts/openstack-up.sh. Source it: . $STATE/openrc
export OS_AUTH_URL=$KS_URL
export OS_IDENTITY_API_VERSION=3
export OS_AUTH_TYPE=password
export OS_USERNAME=$1
export OS_PASSWORD=$2
export OS_PROJECT_NAME=$3
export OS_PROJECT_ID=$4
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
# gophercloud's AuthOptionsFromEnv reads OS_DOMAIN_NAME, not OS_USER_DOMAIN_NAME.
export OS_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
export OS_SWIFT_TEMPURL_KEY=$TEMPURL_KEY
EOF
}
cloud() { # cloud NAME USER PASSWORD PROJECT
  cat <<EOF
  $1:
    auth:
      auth_url: $KS_URL
      username: $2
      password: $3
      project_name: $4
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
}
(
  umask 077
  openrc demo "$DEMO_PASSWORD" demo "$demo_project_id" >"$STATE/openrc.tmp"
  openrc admin "$ADMIN_PASSWORD" admin "$admin_project_id" >"$STATE/openrc-admin.tmp"
  {
    echo "# Written by scripts/openstack-up.sh. OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml OS_CLOUD=gostree"
    echo "clouds:"
    cloud gostree demo "$DEMO_PASSWORD" demo
    cloud gostree-admin admin "$ADMIN_PASSWORD" admin
  } >"$STATE/clouds.yaml.tmp"
  mv "$STATE/openrc.tmp" "$STATE/openrc"
  mv "$STATE/openrc-admin.tmp" "$STATE/openrc-admin"
  mv "$STATE/clouds.yaml.tmp" "$STATE/clouds.yaml"
)
cat >"$STATE/ports.env" <<EOF
KEYSTONE_PORT=$KEYSTONE_PORT
GLANCE_PORT=$GLANCE_PORT
SWIFT_PORT=$SWIFT_PORT
SWIFT_OBJECT_PORT=$SWIFT_OBJECT_PORT
SWIFT_CONTAINER_PORT=$SWIFT_CONTAINER_PORT
SWIFT_ACCOUNT_PORT=$SWIFT_ACCOUNT_PORT
MEMCACHED_PORT=$MEMCACHED_PORT
EOF
if [ "$WITH_HEAT" = 1 ]; then
  printf 'HEAT_PORT=%s\nHEAT_CFN_PORT=%s\n' "$HEAT_PORT" "$HEAT_CFN_PORT" >>"$STATE/ports.env"
fi
took "client files" "$t"
took "TOTAL" "$T0"
log "ready: . $STATE/openrc (or OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml OS_CLOUD=gostree)"
