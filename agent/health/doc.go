// Package health runs the health checks of a boot and keeps their report:
// the "verify" step of gostree-agent, after a new deployment has booted.
//
// The model is greenboot's, which users of ostree systems know:
//
//   - scripts in a required directory (default
//     /etc/gostree/health/required.d) must all pass; scripts in a wanted
//     directory (default /etc/gostree/health/wanted.d) are run and
//     reported, but their failure does not make the boot unhealthy;
//   - named systemd units, required or wanted, must be active — or, for a
//     Type=oneshot service, have run since boot and exited successfully
//     (see UnitStatus.Verdict); a unit still activating is waited for,
//     up to the timeout.
//
// Scripts are the executable regular files (or symbolic links to them) of
// a directory, run one at a time in lexical (byte) order, like
// run-parts(8): hidden files, editor and package-manager backups (*~,
// *.rpmsave, *.rpmnew, *.dpkg-old, …), directories and non-executable
// files are skipped and listed in Report.Skipped. A directory that does
// not exist means no checks. Each script runs with stdin from /dev/null,
// working directory /, the caller's environment minus systemd's
// notification, watchdog and socket-activation variables, plus
// Config.Env; stdout and stderr go into one pipe of which the last 64 KiB
// are kept. A script runs in its own process group, and the whole group is
// killed with SIGKILL when the timeout passes and also when the script
// exits: a check must not leave processes behind.
//
// Checks run as root, so a script is refused (a failed check, never run)
// when it or any directory above it is owned by another user or writable
// by other users (world-writable, or group-writable by a group other than
// root); a check directory that is unsafe in that way is refused as a
// whole (one failed check named after it). A sticky world-writable
// directory such as /tmp is accepted above a check directory, not as one.
//
// Every check has a timeout (Config.Timeout, default 5 minutes, each).
// Run never stops early: all checks run, so the report says everything
// that is wrong.
//
// # The healthcheck unit and the agent
//
// contrib/systemd/gostree-healthcheck.service runs `gostree-agent
// health-check` on every boot, after multi-user.target, ordered before
// and required by boot-complete.target: that command calls Run, saves the
// report with SaveReport to DefaultReportPath (/run/gostree-agent/health.json)
// and exits non-zero when the report is not OK, so that
// boot-complete.target — and with it systemd-bless-boot.service, which
// marks a boot-counted entry good — is reached only when every required
// check passed. The agent (gostree-agent run) waits for that report with
// WaitReport, keyed by BootID so that a report of an earlier boot is never
// mistaken for this one, and rolls back when it is not OK (or when the
// unit failed without writing one; see ShowUnit). The agent can also call
// Run itself, but its scripts then run inside gostree-agent.service's
// sandbox (read-only /usr and /var, no W^X memory, a system call filter),
// which the healthcheck unit deliberately does not have: prefer the unit's
// report.
//
// Unit checks call `systemctl show`; the tests here use a fake systemctl
// (Config.Systemctl) and the real systemd is exercised in the VM test of
// issue 7. This package logs nothing.
package health
