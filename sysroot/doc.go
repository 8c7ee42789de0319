// Package sysroot manages an OSTree system root: the deployments under
// ostree/deploy/OS/deploy/CSUM.SERIAL, their .origin files, the per-
// stateroot /var, the kernels in boot/ostree/OS-BOOTCSUM, the BLS entries
// in boot/loader.N/entries and the bootlink farms ostree/boot.N.M — the
// exact layout `ostree admin` (2022.7) writes and reads, so either tool
// can continue a sysroot made by the other.
//
// Atomicity. Every change of the deployment list is written in full next
// to the live one (new deployment checked out, its /etc merged, kernel
// copied, new BLS entries in the inactive boot/loader.N, a new bootlink
// farm, origin files, the ostree/B/S/I refs), everything is synced, and
// the switch is one rename(2) of a new boot/loader symlink — or, when only
// the deployment behind unchanged boot entries moves, of the ostree/boot.B
// symlink. A crash at any point leaves either the old or the new set of
// boot entries, each naming a complete deployment; Cleanup removes what a
// crash left behind.
//
// /etc is merged by package etcmerge (old defaults, old /etc, new
// defaults); /var (ostree/deploy/OS/var) is shared per stateroot and never
// touched by a deploy.
//
// Staged deployments (Deploy with Stage) are checked out immediately but
// only recorded in RUNDIR/ostree/staged-deployment; FinalizeStaged (run at
// shutdown by contrib/systemd/gostree-finalize-staged.service) merges /etc
// at that moment and performs the switch.
//
// A Sysroot is used under its lock (ostree/lock, flock, as ostree): Open,
// Lock, then operations; Close releases everything. The library writes
// nothing to stdout or stderr; operations return what they did.
package sysroot
