package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket like systemd's notification socket and
// points NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func shortDir(t *testing.T) string {
	t.Helper()
	// sun_path holds 108 bytes: keep the socket path short whatever TMPDIR is.
	dir, err := os.MkdirTemp("/tmp", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func recv(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no datagram received: %v", err)
	}
	return string(buf[:n])
}

func TestMessagesOnPathSocket(t *testing.T) {
	conn := listen(t, filepath.Join(shortDir(t), "notify"))
	cases := []struct {
		send func() error
		want string
	}{
		{Ready, "READY=1"},
		{func() error { return Status("pulling 3/10 objects\nsecond line") }, "STATUS=pulling 3/10 objects second line"},
		{Watchdog, "WATCHDOG=1"},
		{Stopping, "STOPPING=1"},
		{func() error { return Notify("RELOADING=1\nMONOTONIC_USEC=1") }, "RELOADING=1\nMONOTONIC_USEC=1"},
	}
	for _, c := range cases {
		if err := c.send(); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, conn); got != c.want {
			t.Errorf("received %q, want %q", got, c.want)
		}
	}
}

func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@gostree-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn := listen(t, name)
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, conn); got != "READY=1" {
		t.Errorf("received %q", got)
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for _, f := range []func() error{Ready, Stopping, Watchdog, func() error { return Status("x") }} {
		if err := f(); err != nil {
			t.Errorf("without NOTIFY_SOCKET: %v", err)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := shortDir(t)
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "nobody-listens"))
	if err := Ready(); err == nil || !strings.Contains(err.Error(), "nobody-listens") {
		t.Errorf("socket without listener: got %v, want an error naming the socket", err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if err := Ready(); err == nil || !strings.Contains(err.Error(), "neither a path") {
		t.Errorf("relative NOTIFY_SOCKET: got %v", err)
	}
	listen(t, filepath.Join(dir, "notify"))
	if err := Notify(""); err == nil {
		t.Error("empty notification accepted")
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	cases := []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, true},
		{"30000000", me, 30 * time.Second, true},
		{"30000000", strconv.Itoa(os.Getpid() + 1), 0, false},
		{"30000000", "garbage", 0, false},
		{"0", "", 0, false},
		{"-5", "", 0, false},
		{"12abc", "", 0, false},
		{"1", "", time.Microsecond, true},
		{"18446744073709551615", "", 0, false}, // does not fit int64
		{"9223372036854775807", "", time.Duration(1<<63 - 1).Truncate(time.Microsecond), true},
	}
	for _, c := range cases {
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		got, ok := WatchdogInterval()
		if got != c.want || ok != c.ok {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: got %v, %v; want %v, %v", c.usec, c.pid, got, ok, c.want, c.ok)
		}
	}
}
