# scripts/bench-lib.sh — sourced by the bench scripts: one starting state for every measured round.
#
# On this machine's root filesystem (ext4 without a journal, kernel 6.18) every file creation
# asks ext4's recently_deleted() about the free inodes it finds: an inode freed less than 60 s
# ago (360 s while its inode table block is dirty) is skipped, and each question is a lookup in
# the block device's cache whose cost grows as that cache fills. Both tools create one file per
# object, so a bench round that follows a big `rm -rf` or a long run of other rounds measures
# those lookups more than the tools (2-3x slower creates). Hence, before each round:
#   bench_settle   at the start and after deleting files: sync, then wait until freed inodes are
#                  old (61 s);
#                  BENCH_SETTLE=0 skips the wait;
#   bench_fresh    sync and drop the page, dentry and inode caches (BENCH_DROP_CACHES=0 keeps them),
#                  then read the given directories once so inputs start warm (needs root).

# bench_settle: wait out ext4's recently-deleted window after files were deleted.
bench_settle() {
  sync
  if [ "${BENCH_SETTLE:-1}" = 1 ]; then
    printf 'bench: waiting 61 s: files were just deleted (see scripts/bench-lib.sh)\n' >&2
    sleep 61
  fi
}

# bench_fresh DIR...: drop the caches, then read every file of each DIR once.
bench_fresh() {
  sync
  if [ "${BENCH_DROP_CACHES:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
    echo 3 >/proc/sys/vm/drop_caches
  fi
  local d
  for d in "$@"; do
    tar -C "$d" -chf - . | cat >/dev/null # not -f /dev/null: GNU tar then skips file data
  done
}

# bench_nginx WORK PROBE: serve WORK/www with nginx (2 workers, its own prefix and config in
# WORK/nginx) on a random free port of 127.0.0.1, retrying when the port was taken, and wait until
# PROBE (a path under the root) answers. Sets bench_base (http://127.0.0.1:PORT) and nginx_pid,
# and stops nginx on exit. Needs NGINX (the binary).
bench_nginx() {
  local work=$1 probe=$2 port try
  mkdir -p "$work/nginx"
  nginx_pid=
  trap 'if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi' EXIT
  for try in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    cat >"$work/nginx/nginx.conf" <<C
user root root;
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  client_body_temp_path $work/nginx/client_body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; root $work/www; disable_symlinks off; }
}
C
    "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
    nginx_pid=$!
    bench_base=http://127.0.0.1:$port
    for _ in $(seq 100); do
      if curl -fsS -o /dev/null "$bench_base/$probe" 2>/dev/null; then return 0; fi
      kill -0 "$nginx_pid" 2>/dev/null || break
      sleep 0.05
    done
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
  done
  printf 'bench: error: nginx did not start (see %s/nginx/error.log)\n' "$work" >&2
  return 1
}
