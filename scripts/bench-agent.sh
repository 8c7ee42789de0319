#!/usr/bin/env bash
# scripts/bench-agent.sh — what gostree-agent costs a node, and how fast it reacts.
#
# A scratch node (a sysroot made to look booted through the run-dir/root-dir/boot-id hooks) runs
# `gostree-agent run` with the `request` source (POLL_TEMP_URL's transport: one URL) pointed at
# nginx on 127.0.0.1, which serves the metadata document and the signed repository.
#   1. idle: IDLE seconds (default 60) at poll_interval 2s with nothing to do — resident memory
#      (VmRSS, VmHWM), CPU time used, and requests per poll from nginx's access log (steady state
#      must be one conditional GET answered 304);
#   2. reaction: the metadata document is replaced with one naming a new commit; the time until
#      `gostree-agent status --json` shows the deployment staged (policy manual: stage only) is
#      compared with poll interval + the pull's own duration (from the agent's log).
# Output: a markdown table on stdout and in _build/bench-agent/results.md.
# Environment: GOSTREE, AGENT (default: build bin/), IDLE. Needs root and nginx.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
work=$root/_build/bench-agent
IDLE=${IDLE:-60}
POLL=2
log() { printf 'bench-agent: %s\n' "$*" >&2; }
die() { printf 'bench-agent: error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
command -v nginx >/dev/null || die "nginx not found (scripts/deps.sh)"
if [ -z "${GOSTREE:-}" ]; then
  go build -o bin/gostree ./cmd/gostree && go build -o bin/gostree-agent ./cmd/gostree-agent
  GOSTREE=$root/bin/gostree AGENT=$root/bin/gostree-agent
fi
AGENT=${AGENT:-$(dirname "$GOSTREE")/gostree-agent}
export OSTREE_SYSROOT_DEBUG=mutable-deployments
rm -rf "$work"
mkdir -p "$work"/{tree,www/meta,run,agent,nginx/logs}

# A tree with a kernel and ~2000 files (about 8 MB), committed twice into a served archive repo.
t=$work/tree
mkdir -p "$t/usr/lib/modules/6.1.0" "$t/usr/etc" "$t/usr/share/data"
head -c 4000000 /dev/urandom >"$t/usr/lib/modules/6.1.0/vmlinuz"
echo initramfs >"$t/usr/lib/modules/6.1.0/initramfs.img"
echo "ID=bench" >"$t/usr/lib/os-release"
echo "x=1" >"$t/usr/etc/app.conf"
for i in $(seq 1 2000); do printf 'file %d %s\n' "$i" "$(head -c 1000 /dev/urandom | base64 -w0)" >"$t/usr/share/data/f$i"; done
repo=$work/www/repo
"$GOSTREE" --repo="$repo" init --mode=archive
v1=$("$GOSTREE" --repo="$repo" commit -b bench/stable -s v1 --add-metadata-string=version=1 --tree=dir="$t")
echo "VERSION=2" >>"$t/usr/lib/os-release"
for i in $(seq 1 100); do echo "changed $i" >>"$t/usr/share/data/f$i"; done
v2=$("$GOSTREE" --repo="$repo" commit -b bench/stable -s v2 --add-metadata-string=version=2 --tree=dir="$t")
"$GOSTREE" --repo="$repo" summary -u

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '%s\n' "daemon on; worker_processes 1; pid $work/nginx/nginx.pid; error_log $work/nginx/logs/error.log;" \
  "events {}" \
  "http { log_format b '\$request_method \$uri \$status'; access_log $work/nginx/logs/access.log b;" \
  "  types { } default_type application/octet-stream; etag on;" \
  "  server { listen 127.0.0.1:$port; root $work/www; } }" >"$work/nginx/nginx.conf"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
agentpid=
cleanup() {
  [ -n "$agentpid" ] && kill "$agentpid" 2>/dev/null || true
  kill "$(cat "$work/nginx/nginx.pid" 2>/dev/null)" 2>/dev/null || true
}
trap cleanup EXIT
url=http://127.0.0.1:$port

# The node: booted into v1.
sysroot=$work/sysroot
"$GOSTREE" admin init-fs "$sysroot" >/dev/null
"$GOSTREE" admin os-init --sysroot="$sysroot" bench >/dev/null
"$GOSTREE" --repo="$sysroot/ostree/repo" remote add --set=gpg-verify=false bench "$url/repo"
"$GOSTREE" --repo="$sysroot/ostree/repo" pull bench bench/stable@"$v1" >/dev/null
"$GOSTREE" admin deploy --sysroot="$sysroot" --os=bench "$v1" >/dev/null
export GOSTREE_RUN_DIR=$work/run GOSTREE_ROOT_DIR=$work/root GOSTREE_BOOT_ID_FILE=$work/boot_id
GOSTREE=$GOSTREE bash scripts/fake-reboot.sh "$sysroot" >/dev/null
touch "$GOSTREE_RUN_DIR/ostree-booted"

meta() { # metadata naming commit $1 (the "gostree" key, as Nova server metadata carries it)
  printf '{"gostree": {"ostree_commit": "%s", "ostree_ref": "bench/stable", "reboot_policy": "manual"}}\n' "$1" >"$work/www/meta/doc.json.tmp"
  mv "$work/www/meta/doc.json.tmp" "$work/www/meta/doc.json"
}
meta "$v1"
cat >"$work/agent/agent.yaml" <<EOF
state_dir: $work/agent/state
run_dir: $GOSTREE_RUN_DIR/gostree-agent
sysroot: $sysroot
remote: bench
poll_interval: ${POLL}s
metadata:
  collectors: [request]
  request:
    metadata_url: $url/meta/doc.json
  ignore_transport: true
reboot:
  warn_users: false
health:
  report_wait: 0s
EOF
chmod 600 "$work/agent/agent.yaml"

"$AGENT" --config="$work/agent/agent.yaml" run 2>"$work/agent.log" &
agentpid=$!
sleep 3 # first poll, settle
: >"$work/nginx/logs/access.log"
kill -USR1 "$(cat "$work/nginx/nginx.pid")" # reopen logs
cpu0=$(awk '{print $14+$15}' "/proc/$agentpid/stat")
log "idle for $IDLE s at poll_interval ${POLL}s"
sleep "$IDLE"
cpu1=$(awk '{print $14+$15}' "/proc/$agentpid/stat")
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$agentpid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$agentpid/status")
tck=$(getconf CLK_TCK)
reqs=$(grep -c '^GET /meta/doc.json' "$work/nginx/logs/access.log" || true)
r304=$(grep -c '^GET /meta/doc.json 304' "$work/nginx/logs/access.log" || true)
other=$(grep -vc '^GET /meta/doc.json' "$work/nginx/logs/access.log" || true)
polls=$((IDLE / POLL))
cpu_ms=$(( (cpu1 - cpu0) * 1000 / tck ))

log "metadata now names v2 $v2"
t0=$(date +%s.%N)
meta "$v2"
staged=
for _ in $(seq 1 600); do
  if "$AGENT" --config="$work/agent/agent.yaml" status --json 2>/dev/null | grep -q '"phase": "reboot"'; then staged=1; break; fi
  sleep 0.1
done
t1=$(date +%s.%N)
[ -n "$staged" ] || die "the agent did not stage v2 within 60 s (log: $work/agent.log)"
react=$(echo "$t1 - $t0" | bc)
pull=$(sed -nE 's/.*msg="pulled [0-9a-f]+: .* in ([0-9.]+)(ms|s)".*/\1 \2/p' "$work/agent.log" | tail -n1 |
  awk '{ if ($2 == "ms") printf "%.3f", $1/1000; else printf "%.3f", $1 }')

{
  echo "| gostree-agent ($IDLE s idle, poll ${POLL}s, request source) | value | goal |"
  echo "|---|---|---|"
  echo "| resident memory (VmRSS / peak VmHWM) | $((rss / 1024)) MB / $((hwm / 1024)) MB | ≤ 20 MB |"
  echo "| CPU while idle | ${cpu_ms} ms over $IDLE s ($(echo "scale=3; $cpu_ms / ($IDLE * 10)" | bc) %) | near zero |"
  echo "| metadata requests per poll (304 answers) | $(echo "scale=2; $reqs / $polls" | bc) ($r304 of $reqs were 304; other requests: $other) | 1 |"
  echo "| metadata change → staged deployment | ${react} s (poll ${POLL} s + pull ${pull:-?} s + stage) | ≈ poll + pull |"
} | tee "$work/results.md"
