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
