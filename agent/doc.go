// Package agent is gostree-agent's engine: it polls Heat metadata (package
// heatmeta), and when a stack asks for another commit it resolves where to
// fetch it (Glance image, Swift container, repository URL or the configured
// remote), pulls and verifies it, stages it as a new deployment of the
// sysroot, reboots according to the reboot policy (package agent/reboot),
// checks the new deployment's health after boot (package agent/health), and
// reports the outcome to Heat — or rolls back to the previous deployment.
//
// # State machine
//
// One job at a time moves through these phases; the job and its phase are
// written to STATE_DIR/state.json (atomically, mode 0600: it holds the
// signal target) before each phase's work starts, so a crash or a reboot
// resumes in the phase it left, and every phase is safe to repeat:
//
//	resolve → pull → stage → reboot → rebooting → verify → report → (idle)
//	                                              ↘ rollback → rebooting → report
//
//	resolve    metadata target → a source (store) for the exact commit
//	pull       commit first (signature and downgrade checks), then its tree
//	stage      a staged deployment (finalization locked until reboot time)
//	reboot     wait for the reboot policy (window, FleetLock slot, manual)
//	rebooting  reboot requested; the next boot (new boot id) moves on
//	verify     the new deployment must be the booted one and pass its checks
//	rollback   a failed check: the previous deployment is made default, reboot
//	report     the outcome is signalled to Heat (retried until it is sent)
//
// A transient failure (network, 5xx, an unreachable Glance or Swift) keeps
// the job in its phase and retries after a jittered, doubling backoff; a
// permanent one (unknown image, bad signature, refused downgrade, missing
// commit) ends the job with a failure report. A commit that failed after
// the reboot (a failed health check, a boot that fell back) is not tried
// again until metadata names another target.
//
// The package logs through the logrus logger it is given and writes nothing
// to stdout or stderr.
package agent
