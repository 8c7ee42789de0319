// Package systemd holds gostree's systemd units, installed to
// /usr/lib/systemd/system by packages and image builds:
//
//   - gostree-finalize-staged.{path,service}: finalize a staged deployment
//     at shutdown (`gostree admin finalize-staged`);
//   - gostree-agent.service: the update agent (`gostree-agent run`,
//     Type=notify with a watchdog, sandboxed to what it must write);
//   - gostree-healthcheck.service: this boot's health checks
//     (`gostree-agent health-check`, package agent/health), required by
//     boot-complete.target.
//
// There is no Go code here: the package's test checks the units with
// systemd's own tools (systemd-analyze verify and security, systemctl
// --root enable) in a scratch root that holds the host's systemd units.
package systemd
