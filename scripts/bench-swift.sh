#!/usr/bin/env bash
# scripts/bench-swift.sh — gostree swift push and pull against the local Swift, and the same pull
# through nginx, on the benchmark trees (issue 5's performance numbers).
#
# Repository: an archive repository with branch v1 = tree-v1 and main = tree-v2 (parent v1) and a
# summary: _build/bench-pull/www/repo when scripts/bench-pull.sh left one, else built here with
# ostree from _build/trees into _build/bench-swift/repo. Run it through scripts/with-openstack.sh
# (`make bench` does) so GOSTREE_OPENSTACK_RC names the openrc of the local OpenStack.
# Steps, each timed (best of ROUNDS, default 1; a fresh container per round):
#   push1  gostree swift push --no-summary v1 into an empty container (objects/s)
#   push2  gostree swift push main v1 afterwards (only v2's new objects; then the summary)
#   pullS  gostree swift pull v1 with a token into a fresh bare repository
#   pullT  gostree swift pull --temp-url v1 (a TempURL signed per request, no token)
#   pullP  gostree pull v1 from the container as a public HTTP remote
#   pullN  gostree pull v1 from nginx on 127.0.0.1 serving the same repository
# and the ratios pullS/pullN, pullT/pullN and pullP/pullN. JOBS (unset: gostree's default) is
# passed as --jobs to push and pull. Output: a markdown table on stdout and in
# _build/bench-swift/results.md. Needs root (bare repositories), nginx and ostree.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
work=$root/_build/bench-swift
trees=${TREES:-$root/_build/trees}
ROUNDS=${ROUNDS:-1}
log() { printf 'bench-swift: %s\n' "$*" >&2; }
die() { printf 'bench-swift: error: %s\n' "$*" >&2; exit 1; }

[ -n "${GOSTREE_OPENSTACK_RC:-}" ] || die "GOSTREE_OPENSTACK_RC is not set: run through scripts/with-openstack.sh"
[ "$(id -u)" -eq 0 ] || die "must run as root"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found: run scripts/deps.sh"
mkdir -p "$work"
# GOSTREE_BIN: a gostree binary to measure instead of building the work tree's.
GOSTREE=${GOSTREE_BIN:-$work/gostree}
[ -n "${GOSTREE_BIN:-}" ] || go build -o "$GOSTREE" ./cmd/gostree

repo=${BENCH_REPO:-$root/_build/bench-pull/www/repo}
if ! ostree --repo="$repo" rev-parse main >/dev/null 2>&1 || ! ostree --repo="$repo" rev-parse v1 >/dev/null 2>&1; then
  repo=$work/repo
  if ! ostree --repo="$repo" rev-parse main >/dev/null 2>&1; then
    [ -d "$trees/tree-v1" ] && [ -d "$trees/tree-v2" ] || die "no $trees/tree-v{1,2}: run scripts/make-trees.sh"
    log "building $repo from $trees"
    rm -rf "$repo"
    ostree init --mode=archive --repo="$repo"
    ostree commit --repo="$repo" -b v1 --tree=dir="$trees/tree-v1" >/dev/null
    ostree commit --repo="$repo" -b main --parent="$(ostree --repo="$repo" rev-parse v1)" --tree=dir="$trees/tree-v2" >/dev/null
  fi
fi
ostree summary -u --repo="$repo"
log "repository $repo"

# shellcheck disable=SC1090
set -a; . "$GOSTREE_OPENSTACK_RC"; set +a

# nginx serving the repository's parent directory on a free port.
ng=$work/nginx
mkdir -p "$ng"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$ng/nginx.conf" <<EOF
worker_processes 2;
pid $ng/nginx.pid;
error_log $ng/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $ng/tmp;
  proxy_temp_path $ng/tmp;
  fastcgi_temp_path $ng/tmp;
  uwsgi_temp_path $ng/tmp;
  scgi_temp_path $ng/tmp;
  server { listen 127.0.0.1:$port; root $(dirname "$repo"); }
}
EOF
mkdir -p "$ng/tmp"
"$NGINX" -c "$ng/nginx.conf" -p "$ng"
containers=()
cleanup() {
  [ -s "$ng/nginx.pid" ] && kill "$(cat "$ng/nginx.pid")" 2>/dev/null || true
  # Delete the benchmark containers (bulk delete, then the container).
  [ ${#containers[@]} -gt 0 ] && /usr/bin/python3 - "${containers[@]}" <<'PY' || true
import json, os, sys, urllib.parse, urllib.request
E = os.environ
body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": E["OS_USERNAME"], "domain": {"name": E["OS_USER_DOMAIN_NAME"]}, "password": E["OS_PASSWORD"]}}},
    "scope": {"project": {"id": E["OS_PROJECT_ID"]}}}}
req = urllib.request.Request(E["OS_AUTH_URL"].rstrip("/") + "/auth/tokens", json.dumps(body).encode(),
                             {"Content-Type": "application/json"})
with urllib.request.urlopen(req) as r:
    tok, cat = r.headers["X-Subject-Token"], json.load(r)["token"]["catalog"]
acct = [e["url"] for s in cat if s["type"] == "object-store" for e in s["endpoints"] if e["interface"] == "public"][0]
def call(method, url, data=None, headers={}):
    rq = urllib.request.Request(url, data, dict(headers, **{"X-Auth-Token": tok}), method=method)
    with urllib.request.urlopen(rq) as r:
        return r.read()
for c in sys.argv[1:]:
    while True:
        names = json.loads(call("GET", "%s/%s?format=json&limit=1000" % (acct, c)) or b"[]")
        if not names:
            break
        lines = "\n".join(urllib.parse.quote("/%s/%s" % (c, o["name"])) for o in names).encode()
        call("POST", acct + "?bulk-delete", lines, {"Content-Type": "text/plain", "Accept": "application/json"})
    call("DELETE", "%s/%s" % (acct, c))
PY
}
trap cleanup EXIT

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
best() { sort -g | head -n 1; }
objects=$(ostree --repo="$repo" ls -R v1 | wc -l)

pjobs=() ujobs=()
if [ -n "${JOBS:-}" ]; then pjobs=(--jobs="$JOBS"); ujobs=(--jobs="$JOBS"); fi
declare -A t=()
for ((r = 1; r <= ROUNDS; r++)); do
  c=gostree-bench-$r-$$
  containers+=("$c")
  a=$(date +%s.%N); "$GOSTREE" --repo="$repo" swift --container="$c" push "${ujobs[@]}" --public --no-summary v1 >"$work/push1.log"; b=$(date +%s.%N)
  t[push1]+="$(secs "$a" "$b") "
  n1=$(awk 'NR==1 {print $1}' "$work/push1.log")
  a=$(date +%s.%N); "$GOSTREE" --repo="$repo" swift --container="$c" push "${ujobs[@]}" main v1 >"$work/push2.log"; b=$(date +%s.%N)
  t[push2]+="$(secs "$a" "$b") "
  n2=$(awk 'NR==1 {print $1}' "$work/push2.log")
  url=$("$GOSTREE" swift --container="$c" url)
  for step in pullS pullT pullP pullN; do
    client=$work/client-$step
    rm -rf "$client"
    "$GOSTREE" --repo="$client" init --mode=bare >/dev/null
    case $step in
      pullS) cmd=("$GOSTREE" --repo="$client" swift --container="$c" pull "${pjobs[@]}" v1) ;;
      pullT) cmd=("$GOSTREE" --repo="$client" swift --container="$c" pull "${pjobs[@]}" --temp-url v1) ;;
      pullP) "$GOSTREE" --repo="$client" remote add --no-gpg-verify sw "$url"; cmd=("$GOSTREE" --repo="$client" pull "${pjobs[@]}" sw v1) ;;
      pullN) "$GOSTREE" --repo="$client" remote add --no-gpg-verify ng "http://127.0.0.1:$port/$(basename "$repo")"; cmd=("$GOSTREE" --repo="$client" pull "${pjobs[@]}" ng v1) ;;
    esac
    a=$(date +%s.%N); "${cmd[@]}" >"$work/$step.log"; b=$(date +%s.%N)
    t[$step]+="$(secs "$a" "$b") "
    [ "$r" = 1 ] && [ "$step" = pullS ] && "$GOSTREE" --repo="$client" fsck >/dev/null
    rm -rf "$client"
  done
done
get() { tr ' ' '\n' <<<"${t[$1]}" | grep . | best; }
p1=$(get push1) p2=$(get push2) ps=$(get pullS) pt=$(get pullT) pp=$(get pullP) pn=$(get pullN)
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
  echo "| step | operation | seconds (best of $ROUNDS) | objects | objects/s | vs nginx pull |"
  echo "|---|---|---:|---:|---:|---:|"
  echo "| push1 | gostree swift push v1 into an empty container | $p1 | $n1 | $(rate "$n1" "$p1") | |"
  echo "| push2 | gostree swift push main (v1 -> v2) afterwards | $p2 | $n2 | $(rate "$n2" "$p2") | |"
  echo "| pullS | gostree swift pull v1 (token) into a bare repository | $ps | $n1 | $(rate "$n1" "$ps") | $(ratio "$ps" "$pn") |"
  echo "| pullT | gostree swift pull --temp-url v1 (TempURLs) into a bare repository | $pt | $n1 | $(rate "$n1" "$pt") | $(ratio "$pt" "$pn") |"
  echo "| pullP | gostree pull v1 from the public container (HTTP) | $pp | $n1 | $(rate "$n1" "$pp") | $(ratio "$pp" "$pn") |"
  echo "| pullN | gostree pull v1 from nginx (same repository) | $pn | $n1 | $(rate "$n1" "$pn") | 1.00 |"
  echo
  echo "($objects paths in tree-v1; local Swift: one proxy, one device, one replica, 127.0.0.1)"
} | tee "$work/results.md"
