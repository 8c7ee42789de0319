// Package sdnotify implements the client side of systemd's service
// notification protocol (sd_notify(3)) for a Type=notify service such as
// gostree-agent.service: readiness, stopping, a free-form status line and
// watchdog keep-alives.
//
// A message is one datagram of newline-separated VAR=VALUE assignments,
// sent to the AF_UNIX socket named by $NOTIFY_SOCKET: a path, or an
// abstract socket when the name starts with '@'. Without NOTIFY_SOCKET
// (not started by systemd, or a service type that does not listen) every
// function is a no-op that returns nil, so callers need not check whether
// they run under systemd. The environment is read on every call and never
// modified; children started by the caller inherit NOTIFY_SOCKET unless
// the caller removes it (systemd accepts messages only from the main PID
// with NotifyAccess=main, the default for Type=notify).
//
// The watchdog: when the unit sets WatchdogSec=, systemd passes
// WATCHDOG_USEC (and WATCHDOG_PID, the process it is meant for).
// WatchdogInterval reports it; the service must call Watchdog more often
// than that — sd_watchdog_enabled(3) recommends every half interval — from
// the loop whose progress it vouches for, not from an independent ticker
// goroutine, or a hung main loop would keep being reported alive.
package sdnotify
