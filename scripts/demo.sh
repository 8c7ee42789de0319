#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: gostree end to end on a small sample OS tree.
# Run as root on Debian 12. Re-runnable: everything lives in _build/demo, which is rebuilt.
#
#   1. build bin/gostree
#   2. write a small sample OS tree (clearly fake content) to _build/demo/tree
#   3. gostree init an archive repo, commit the tree as demo/stable (version=1.0)
#   4. gostree log / ls -R
#   5. gostree checkout to _build/demo/checkout and compare it with the input tree
#   6. if the real ostree is installed: ostree fsck + ostree log on gostree's repo, and the same
#      commit made by ostree must have the same checksum
#   7. sign it (GPG), serve it with nginx on 127.0.0.1, pull it into a scratch sysroot, deploy it,
#      deploy a second version over it (/etc merged), print `admin status`, roll back
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
umask 022

demo=$root/_build/demo
tree=$demo/tree
repo=$demo/repo
checkout=$demo/checkout
# GOSTREE=/path/to/binary skips the build (GOSTREE=ostree checks the script itself).
gostree=${GOSTREE:-}
ref=demo/stable
commit_flags=(-b "$ref" -s "Demo OS 1.0" --add-metadata-string=version=1.0
              "--timestamp=2024-01-01 00:00:00 +0000")

step() { printf '\n==> %s\n' "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run the demo as root (the checkout keeps file ownership)"
if [ -z "$gostree" ]; then
  gostree=$root/bin/gostree
  step "build $gostree"
  command -v go >/dev/null || fail "go not found (expected at /usr/local/go/bin)"
  mkdir -p "$(dirname "$gostree")"
  go build -o "$gostree" ./cmd/gostree
  go build -o "$(dirname "$gostree")/gostree-agent" ./cmd/gostree-agent
fi

step "sample OS tree in $tree (fake content, for the demo only)"
# deployments of the previous run are immutable (chattr +i), as on a real system
for d in "$demo"/sysroot/ostree/deploy/*/deploy/*/; do [ -d "$d" ] && chattr -i "$d"; done 2>/dev/null || true
rm -rf "$demo"
mkdir -p "$tree"
chmod 0755 "$tree"
(
  cd "$tree"
  mkdir -p usr/bin usr/lib/modules/5.10.0-demo usr/lib/demo/empty usr/share/demo usr/etc/demo
  cat >usr/lib/os-release <<'EOF'
NAME="gostree demo OS"
ID=gostree-demo
VERSION_ID=1.0
PRETTY_NAME="gostree demo OS 1.0 (sample content)"
EOF
  cat >usr/bin/demo-hello <<'EOF'
#!/bin/sh
echo "hello from the gostree demo tree (sample content)"
EOF
  chmod 0755 usr/bin/demo-hello
  echo "demo-host" >usr/etc/hostname
  printf 'Welcome to the gostree demo OS (sample content).\n' >usr/etc/motd
  printf '# sample configuration, not used by anything\n[demo]\ncolour = blue\n' >usr/etc/demo/demo.conf
  printf 'token = not-a-real-secret\n' >usr/etc/demo/secret.conf
  chmod 0600 usr/etc/demo/secret.conf
  ln -s ../lib/os-release usr/etc/os-release
  ln -s demo-hello usr/bin/hello
  seq 1 50000 >usr/share/demo/numbers.txt
  echo "placeholder kernel for the gostree demo: not bootable" >usr/lib/modules/5.10.0-demo/vmlinuz
  echo "placeholder initramfs for the gostree demo: not bootable" >usr/lib/modules/5.10.0-demo/initramfs.img
)
find "$tree" -mindepth 1 \( -type l -printf '%M %P -> %l\n' \) -o -printf '%M %P\n' | sort -k2

step "gostree init --mode=archive"
"$gostree" --repo="$repo" init --mode=archive

step "gostree commit $(printf '%q ' "${commit_flags[@]}")--tree=dir=$tree"
"$gostree" --repo="$repo" commit "${commit_flags[@]}" --tree=dir="$tree"
[ -s "$repo/refs/heads/$ref" ] || fail "no ref $ref after commit"
csum=$(tr -d '\n' <"$repo/refs/heads/$ref")

step "gostree log $ref"
log=$("$gostree" --repo="$repo" log "$ref")
echo "$log"
grep -q "$csum" <<<"$log" || fail "gostree log does not show commit $csum"

step "gostree ls -R $ref"
"$gostree" --repo="$repo" ls -R "$ref"

step "gostree checkout $ref $checkout"
"$gostree" --repo="$repo" checkout "$ref" "$checkout"

step "compare checkout with the input tree"
diff -r --no-dereference "$tree" "$checkout" || fail "file contents differ (diff -r above)"
pass "diff -r: same files, contents and symlink targets"
listing() { (cd "$1" && find . -printf '%P\t%y\t%m\t%u:%g\t%l\n' | sort); }
if ! diff <(listing "$tree") <(listing "$checkout"); then
  fail "types, modes, owners or symlink targets differ (find -printf above: path type mode owner target)"
fi
pass "find -printf: same types, modes, owners and symlink targets ($(listing "$tree" | wc -l) entries)"

if command -v ostree >/dev/null; then
  step "the real ostree ($(ostree --version | sed -n "s/ *Version: '\(.*\)'/\1/p")) reads gostree's repo"
  ostree --repo="$repo" fsck || fail "ostree fsck on gostree's repo"
  pass "ostree fsck"
  olog=$(ostree --repo="$repo" log "$ref")
  echo "$olog"
  grep -q "^commit $csum" <<<"$olog" || fail "ostree log does not show commit $csum"
  pass "ostree log shows the same commit $csum"

  step "the same commit made by ostree has the same checksum"
  ostree --repo="$demo/ostree-repo" init --mode=archive
  ocsum=$(ostree --repo="$demo/ostree-repo" commit "${commit_flags[@]}" --tree=dir="$tree")
  echo "ostree: $ocsum"
  echo "gostree: $csum"
  [ "$ocsum" = "$csum" ] || fail "checksums differ: gostree is not byte-compatible on this tree"
  pass "identical commit checksum"
else
  step "ostree is not installed: skipping the checks with the real ostree (scripts/deps.sh installs it)"
fi

# ==== signed, served over HTTP, pulled and deployed into a scratch sysroot =====================
step "sign the commit with a throwaway GPG key (pure Go: gostree reads the GnuPG home itself)"
export GNUPGHOME=$demo/gnupg
mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'gostree demo <demo@example.invalid>' ed25519 sign never
keyid=$(gpg --batch --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --export "$keyid" >"$demo/demo.gpg"
"$gostree" --repo="$repo" gpg-sign --gpg-homedir="$GNUPGHOME" "$ref" "$keyid"
"$gostree" --repo="$repo" summary -u --gpg-sign="$keyid" --gpg-homedir="$GNUPGHOME"
pass "commit and summary signed by $keyid"

step "serve the repository with nginx on 127.0.0.1"
command -v nginx >/dev/null || fail "nginx not found: run scripts/deps.sh"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$demo/nginx/logs"
printf '%s\n' "daemon on; pid $demo/nginx/nginx.pid; error_log $demo/nginx/logs/error.log;" \
  "events {}" \
  "http { access_log $demo/nginx/logs/access.log; types { } default_type application/octet-stream;" \
  "  server { listen 127.0.0.1:$port; root $repo; } }" >"$demo/nginx/nginx.conf"
nginx -p "$demo/nginx" -c "$demo/nginx/nginx.conf"
trap 'kill "$(cat "$demo/nginx/nginx.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
url=http://127.0.0.1:$port
pass "serving $repo at $url"

sysroot=$demo/sysroot
step "a scratch sysroot in $sysroot: init-fs, os-init demo, a remote that trusts the demo key"
"$gostree" admin init-fs "$sysroot"
"$gostree" admin os-init --sysroot="$sysroot" demo
srepo=$sysroot/ostree/repo
"$gostree" --repo="$srepo" remote add --set=gpgkeypath="$demo/demo.gpg" --set=gpg-verify-summary=true origin "$url"

step "pull origin:$ref over HTTP (signatures verified)"
"$gostree" --repo="$srepo" pull origin "$ref"
[ "$("$gostree" --repo="$srepo" rev-parse "origin:$ref")" = "$csum" ] || fail "pulled commit differs"
pass "pulled $csum, signatures verified"

step "deploy it, then edit its /etc"
"$gostree" admin deploy --sysroot="$sysroot" --os=demo --karg=root=LABEL=demo-root "origin:$ref"
dep=$sysroot/ostree/deploy/demo/deploy/$csum.0
[ -d "$dep/etc" ] || fail "deployment $dep has no /etc"
echo "added locally" >"$dep/etc/added-locally.conf"

step "version 1.1: commit, sign, publish; pull and deploy it (the /etc edit carries over)"
echo "VERSION_ID=1.1" >>"$tree/usr/lib/os-release"
"$gostree" --repo="$repo" commit -b "$ref" -s "Demo OS 1.1" --add-metadata-string=version=1.1 \
  --gpg-sign="$keyid" --gpg-homedir="$GNUPGHOME" --tree=dir="$tree" >/dev/null
"$gostree" --repo="$repo" summary -u --gpg-sign="$keyid" --gpg-homedir="$GNUPGHOME"
"$gostree" --repo="$srepo" pull origin "$ref"
"$gostree" admin deploy --sysroot="$sysroot" --os=demo "origin:$ref"
new=$("$gostree" --repo="$srepo" rev-parse "origin:$ref")
[ -f "$sysroot/ostree/deploy/demo/deploy/$new.0/etc/added-locally.conf" ] || fail "/etc edit lost in the new deployment"
pass "deployed $new with the local /etc change merged"

step "gostree admin status"
"$gostree" admin status --sysroot="$sysroot"
if command -v ostree >/dev/null; then
  step "ostree admin status reads the same sysroot"
  ostree admin status --sysroot="$sysroot"
fi

step "roll back: the previous deployment becomes the default again"
"$gostree" admin rollback --sysroot="$sysroot"
"$gostree" admin status --sysroot="$sysroot"

# ==== gostree-agent: metadata asks for a new commit; the agent pulls, stages, reboots, checks =====
step "gostree-agent: the scratch sysroot plays a booted node (run dir, root and boot id hooks)"
agent=$(dirname "$gostree")/gostree-agent
[ -x "$agent" ] || fail "$agent not built"
export GOSTREE_RUN_DIR=$demo/run GOSTREE_ROOT_DIR=$demo/root GOSTREE_BOOT_ID_FILE=$demo/boot_id
rm -rf "$GOSTREE_RUN_DIR" "$GOSTREE_ROOT_DIR" "$demo/agent" "$demo/metadata"
mkdir -p "$GOSTREE_RUN_DIR" "$demo/metadata" "$demo/agent/health/required.d"
GOSTREE=$gostree bash "$root/scripts/fake-reboot.sh" "$sysroot" # "boot" the default deployment
touch "$GOSTREE_RUN_DIR/ostree-booted"
"$gostree" admin status --sysroot="$sysroot"
booted=$(readlink "$GOSTREE_ROOT_DIR")
echo "set by the operator under the old version" >"$booted/etc/operator.conf"

cat >"$demo/agent/agent.yaml" <<EOF
state_dir: $demo/agent/state
run_dir: $GOSTREE_RUN_DIR/gostree-agent
sysroot: $sysroot
remote: origin              # commits must carry a signature by the demo key
poll_interval: 2s
metadata:
  collectors: [local]       # on a cloud node: heat_local, config_drive, heat, request, ...
  local:
    path: [$demo/metadata]
reboot:
  policy: immediate
  command: [env, GOSTREE=$gostree, bash, $root/scripts/fake-reboot.sh, $sysroot]
  warn_users: false
health:
  required_dir: $demo/agent/health/required.d
  report_wait: 0s
EOF
cat >"$demo/agent/health/required.d/10-os-release" <<'EOF'
#!/bin/sh
# a health check: the booted tree must say which version it is
grep -q VERSION_ID "$GOSTREE_ROOT_DIR/usr/lib/os-release" && echo "running $GOSTREE_BOOTED_COMMIT"
EOF
chmod 755 "$demo/agent/health/required.d/10-os-release"
chmod 700 "$demo/agent"
agentc() { "$agent" --config="$demo/agent/agent.yaml" "$@"; }

step "version 1.2: commit, sign, publish; metadata (the 'gostree' key, as in Nova server metadata) asks for it"
echo "VERSION_ID=1.2" >>"$tree/usr/lib/os-release"
"$gostree" --repo="$repo" commit -b "$ref" -s "Demo OS 1.2" --add-metadata-string=version=1.2 \
  --gpg-sign="$keyid" --gpg-homedir="$GNUPGHOME" --tree=dir="$tree" >/dev/null
"$gostree" --repo="$repo" summary -u --gpg-sign="$keyid" --gpg-homedir="$GNUPGHOME"
v12=$("$gostree" --repo="$repo" rev-parse "$ref")
printf '{"gostree": {"ostree_commit": "%s", "ostree_ref": "%s", "ostree_version": "1.2"}}\n' "$v12" "$ref" >"$demo/metadata/server.json"
chmod 600 "$demo/metadata/server.json"
agentc check

step "gostree-agent once: resolve, pull (signature verified), stage, reboot"
agentc once
step "gostree-agent once (after the reboot): verify the boot, run the health checks, finish"
agentc once
step "gostree-agent status"
agentc status
[ "$(basename "$(readlink "$GOSTREE_ROOT_DIR")")" = "$v12.0" ] || fail "the node did not come up in $v12"
[ -f "$GOSTREE_ROOT_DIR/etc/operator.conf" ] || fail "the operator's /etc change was lost"
agentc status --json | grep -q '"ok": true' || fail "the agent does not report success"
pass "the agent deployed $v12: rebooted into it, /etc change kept, health check passed"
unset GOSTREE_RUN_DIR GOSTREE_ROOT_DIR GOSTREE_BOOT_ID_FILE
# ==============================================================================================

printf '\nDEMO PASS: commit %s of %s in %s\n' "$csum" "$ref" "$repo"
