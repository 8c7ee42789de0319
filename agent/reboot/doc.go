// Package reboot decides when gostree-agent may reboot into a staged
// deployment, warns logged-in users, and performs the reboot. It logs
// nothing: decisions carry their reason and errors say what went wrong.
//
// # Policies
//
// New turns a heatmeta.RebootPolicy into a Gate:
//
//	immediate   (or "")  Check is always Now.
//	manual               Check is never Now (ManualReason); an operator runs gostree-agent apply.
//	window               Zincati's "periodic" strategy: weekly windows in an IANA time zone.
//	fleet_lock           a reboot slot from a FleetLock server, as Zincati takes one.
//
// Release is a no-op except for fleet_lock.
//
// # Windows
//
// A window opens on each of its days at its start time as the clock on
// the wall in the policy's zone (default UTC) shows it, and stays open for
// its length of elapsed time, so it may run past midnight and from
// Saturday into Sunday, and a window of 60 minutes is 60 real minutes even
// across a DST change. On a day when clocks go back and the start time
// happens twice, the window opens at the first; on a day when clocks go
// forward over the start time, it opens as far after the jump as the start
// was into the skipped interval (02:30 in a skipped 02:00-03:00 opens at
// 03:30 summer time). Outside every window Check says so and sets
// Decision.Next to when the next window opens. Windows are at least a
// minute and at most a week long. The zone must be named ("Local" is
// refused, so a policy means the same on every node); binaries embed the
// tz database by importing time/tzdata.
//
// # FleetLock
//
// The fleet_lock gate implements the FleetLock protocol (Zincati's
// docs/development/fleetlock/protocol.md, served by airlock and others):
// Check POSTs to <base>/v1/pre-reboot (RecursiveLock) and Release to
// <base>/v1/steady-state (UnlockIfHeld), each with the header
// "fleet-lock-protocol: true" and the body
// {"client_params":{"id":ID,"group":GROUP}} (group default "default",
// ^[a-zA-Z0-9.-]+$). The base URL's path is kept (https://lock.example/base
// gives https://lock.example/base/v1/pre-reboot). Only 200 is success. A
// 4xx from pre-reboot is a refusal, Decision{Now: false} with the server's
// error "value" and "kind" in Reason; a 4xx from steady-state is a
// permanent *Error. 5xx, network errors and timeouts are *Error with
// Retryable set (IsRetryable); redirects are not followed (the protocol
// header exists so that a request is not replayed somewhere else) and are
// permanent errors, as are other status codes. Both calls are idempotent
// on the server: the agent calls Release at start-up when nothing is
// pending, as Zincati does, and Check again after a restart while it
// holds the slot.
//
// The client id is Options.NodeID or, by default, NodeID of the machine
// id: the systemd app-specific id (sd_id128_get_machine_app_specific) for
// AppID, 32 lowercase hex digits. It is stable for the machine, does not
// reveal /etc/machine-id, and differs from Zincati's id on the same node
// (different app id), so both agents never share a slot by accident.
//
// # Warning users and rebooting
//
// WarnUsers writes a message to the terminal of every logged-in user, as
// wall(1) does, reading utmp records (ParseUtmp: glibc's 384-byte x86_64
// layout). It never follows a symbolic link below the device directory,
// opens only devices of a kernel tty driver, and gives up on a terminal
// that does not take the message within TerminalWriteTimeout.
// CommandRebooter runs systemctl reboot (or another command) and reports
// its standard error when it fails.
package reboot
