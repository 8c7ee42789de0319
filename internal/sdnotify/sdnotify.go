package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notify sends state, one or more newline-separated VAR=VALUE assignments,
// to $NOTIFY_SOCKET. It does nothing and returns nil when NOTIFY_SOCKET is
// unset or empty.
func Notify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if state == "" {
		return errors.New("sdnotify: empty notification")
	}
	if sock[0] != '/' && sock[0] != '@' {
		// systemd also accepts vsock:CID:PORT; gostree-agent only runs
		// under the local service manager.
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract socket name", sock)
	}
	// Go maps a leading '@' to the abstract namespace (a leading NUL).
	addr := &net.UnixAddr{Name: sock, Net: "unixgram"}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sdnotify: connecting to %s: %w", sock, err)
	}
	defer conn.Close()
	n, err := conn.Write([]byte(state))
	if err != nil {
		return fmt.Errorf("sdnotify: sending to %s: %w", sock, err)
	}
	if n != len(state) {
		return fmt.Errorf("sdnotify: sending to %s: short write (%d of %d bytes)", sock, n, len(state))
	}
	return nil
}

// Ready tells systemd that start-up is finished (READY=1): a Type=notify
// unit leaves "activating" and units ordered after it may start.
func Ready() error { return Notify("READY=1") }

// Stopping tells systemd that the service is shutting down (STOPPING=1).
func Stopping() error { return Notify("STOPPING=1") }

// Status sets the one-line status shown by `systemctl status` (STATUS=...).
// Newlines in s would start a new assignment, so they are replaced with
// spaces.
func Status(s string) error {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return Notify("STATUS=" + s)
}

// Watchdog sends a keep-alive (WATCHDOG=1). Call it at least every half
// WatchdogInterval, or systemd kills and (with Restart=on-failure)
// restarts the service.
func Watchdog() error { return Notify("WATCHDOG=1") }

// WatchdogInterval returns the watchdog timeout systemd expects keep-alives
// within (WATCHDOG_USEC), and false when the watchdog is not enabled for
// this process: WATCHDOG_USEC unset, not a positive integer, or
// WATCHDOG_PID set to another process.
func WatchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0, false
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil || pid != os.Getpid() {
			return 0, false
		}
	}
	const maxUsec = int64(1<<63-1) / int64(time.Microsecond)
	if usec > maxUsec {
		usec = maxUsec
	}
	return time.Duration(usec) * time.Microsecond, true
}
