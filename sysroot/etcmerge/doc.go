// Package etcmerge implements OSTree's /etc handling as a pure function of
// three directory trees: the old defaults (the merge deployment's
// usr/etc), the current configuration (its etc) and the new defaults (the
// new deployment's usr/etc). It knows nothing about sysroots.
//
// Diff computes the local changes exactly as `ostree admin config-diff`
// (ostree_diff_dirs with IGNORE_XATTRS): modified, removed and added paths,
// in readdir order. Merge replays them onto a copy of the new defaults the
// way ostree's merge_configuration_from does: removed paths are deleted,
// modified and added items are copied over whole (directories recursively),
// parents are recreated from the current /etc, special files are skipped,
// and a locally modified non-directory where the new defaults now have a
// directory is an error.
//
// Two deliberate differences from ostree 2022.7, both reported in
// Result.Notes so callers can tell the user:
//
//   - a file whose only local change is its mode or owner (content equal
//     to the old default) no longer pins the whole old file: the new
//     default content is kept and the local mode/owner applied to it
//     (ostree silently drops the new default content);
//   - a directory whose mode or owner was changed locally and that still
//     exists in the new defaults keeps the local mode/owner (ostree
//     silently resets it to the new default).
//
// Options.OstreeCompat turns both off, giving ostree's exact result.
package etcmerge
