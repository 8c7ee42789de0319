package reboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// encodeUtmp writes e in glibc's x86_64 struct utmp layout.
func encodeUtmp(e UtmpEntry) []byte {
	r := make([]byte, UtmpRecordSize)
	le := binary.LittleEndian
	le.PutUint16(r[0:], uint16(e.Type))
	le.PutUint32(r[utOffPID:], uint32(e.PID))
	copy(r[utOffLine:utOffLine+utLineLen], e.Line)
	copy(r[utOffID:utOffID+utIDLen], e.ID)
	copy(r[utOffUser:utOffUser+utUserLen], e.User)
	copy(r[utOffHost:utOffHost+utHostLen], e.Host)
	le.PutUint32(r[utOffSession:], uint32(e.Session))
	if !e.Time.IsZero() {
		le.PutUint32(r[utOffTvSec:], uint32(e.Time.Unix()))
		le.PutUint32(r[utOffTvUsec:], uint32(e.Time.Nanosecond()/1000))
	}
	if e.Addr.Is4() {
		a := e.Addr.As4()
		copy(r[utOffAddr:], a[:])
	} else if e.Addr.IsValid() {
		a := e.Addr.As16()
		copy(r[utOffAddr:], a[:])
	}
	return r
}

func utmpFile(t *testing.T, entries ...UtmpEntry) string {
	t.Helper()
	var b []byte
	for _, e := range entries {
		b = append(b, encodeUtmp(e)...)
	}
	p := filepath.Join(t.TempDir(), "utmp")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (CI=true)", name)
		}
		t.Skipf("%s not installed", name)
	}
}

// The layout agrees with glibc's as util-linux's utmpdump reads and
// writes it, both ways.
func TestParseUtmpMatchesUtmpdump(t *testing.T) {
	requireTool(t, "utmpdump")
	// utmpdump -r: text to binary, then ParseUtmp.
	text := "[7] [01234] [ts/1] [alice   ] [pts/1       ] [example.org         ] [192.0.2.1      ] [2026-11-26T06:00:00,250000+00:00]\n" +
		"[8] [00055] [ts/2] [        ] [pts/2       ] [                    ] [0.0.0.0        ] [2026-11-26T06:00:01,000000+00:00]\n" +
		"[6] [00777] [tty1] [LOGIN   ] [tty1        ] [                    ] [2001:db8::1    ] [2026-11-26T06:00:02,000000+00:00]\n"
	cmd := exec.Command("utmpdump", "-r")
	cmd.Stdin = strings.NewReader(text)
	bin, err := cmd.Output()
	if err != nil {
		t.Fatalf("utmpdump -r: %v", err)
	}
	got, err := ParseUtmp(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := []UtmpEntry{
		{Type: UtmpUserProcess, PID: 1234, Line: "pts/1", ID: "ts/1", User: "alice", Host: "example.org",
			Time: time.Date(2026, 11, 26, 6, 0, 0, 250000000, time.UTC), Addr: netip.MustParseAddr("192.0.2.1")},
		{Type: UtmpDeadProcess, PID: 55, Line: "pts/2", ID: "ts/2", Time: time.Date(2026, 11, 26, 6, 0, 1, 0, time.UTC)},
		{Type: UtmpLoginProcess, PID: 777, Line: "tty1", ID: "tty1", User: "LOGIN",
			Time: time.Date(2026, 11, 26, 6, 0, 2, 0, time.UTC), Addr: netip.MustParseAddr("2001:db8::1")},
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// Our encoding (the test's utmp builder) is what utmpdump reads.
	p := utmpFile(t, want...)
	out, err := exec.Command("utmpdump", p).Output()
	if err != nil {
		t.Fatalf("utmpdump: %v", err)
	}
	if !bytes.Equal(out, []byte(text)) {
		t.Fatalf("utmpdump of our file:\n%s\nwant\n%s", out, text)
	}
}

func TestParseUtmpTrailing(t *testing.T) {
	b := append(encodeUtmp(UtmpEntry{Type: UtmpUserProcess, User: "u", Line: "tty1"}), 1, 2, 3)
	got, err := ParseUtmp(b)
	if err == nil || !strings.Contains(err.Error(), "3 bytes after record 1") {
		t.Fatalf("error %v", err)
	}
	if len(got) != 1 || got[0].User != "u" {
		t.Fatalf("records before the junk: %+v", got)
	}
	// Fields that fill their whole array have no NUL.
	long := UtmpEntry{Type: UtmpUserProcess, User: strings.Repeat("u", 32), Line: strings.Repeat("l", 32), ID: "abcd", Host: strings.Repeat("h", 256)}
	got, err = ParseUtmp(encodeUtmp(long))
	if err != nil || got[0] != long {
		t.Fatalf("%+v %v", got, err)
	}
	if got, err := ParseUtmp(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}

// pty is a pseudo-terminal pair: the test reads what is written to the
// slave (a logged-in user's terminal) from the master.
type pty struct {
	master *os.File
	slave  *os.File
	line   string // "pts/N"
}

func openPty(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pseudo-terminals: %v", err)
		}
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil {
			return
		}
		n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
	})
	if ioErr != nil {
		t.Fatalf("unlockpt/ptsname: %v", ioErr)
	}
	line := fmt.Sprintf("pts/%d", n)
	// The user's shell holds the terminal open.
	s, err := os.OpenFile("/dev/"+line, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &pty{master: m, slave: s, line: line}
}

// readUntil reads from the master until want has arrived (or fails after
// the bound: a generous deadline against hanging, not a timing check).
func (p *pty) readUntil(t *testing.T, want string) string {
	t.Helper()
	p.master.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(want)) {
		n, err := p.master.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("%s: read %q, then %v; want %q", p.line, got, err, want)
		}
	}
	return string(got)
}

// stop suspends the terminal's output, as a user pressing ^S (XOFF) does:
// nothing written to it goes anywhere until it is resumed.
func (p *pty) stop(t *testing.T) {
	t.Helper()
	rc, err := p.slave.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ioErr error
	rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetInt(int(fd), unix.TCXONC, unix.TCOOFF) })
	if ioErr != nil {
		t.Fatalf("TCOOFF: %v", ioErr)
	}
}

// resume undoes stop.
func (p *pty) resume(t *testing.T) {
	t.Helper()
	rc, _ := p.slave.SyscallConn()
	var ioErr error
	rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetInt(int(fd), unix.TCXONC, unix.TCOON) })
	if ioErr != nil {
		t.Fatalf("TCOON: %v", ioErr)
	}
}

func TestWarnUsersPty(t *testing.T) {
	alice, bob, idle := openPty(t), openPty(t), openPty(t)
	bob.stop(t) // bob's terminal is stuck
	now := time.Now()
	p := utmpFile(t,
		UtmpEntry{Type: UtmpBootTime, Line: "~", User: "reboot"},
		UtmpEntry{Type: UtmpUserProcess, PID: 10, Line: alice.line, User: "alice", Time: now},
		UtmpEntry{Type: UtmpUserProcess, PID: 11, Line: "/dev/" + alice.line, User: "alice"}, // same terminal, once
		UtmpEntry{Type: UtmpUserProcess, PID: 12, Line: bob.line, User: "bob"},
		UtmpEntry{Type: UtmpDeadProcess, PID: 13, Line: idle.line, User: "carol"},  // logged out
		UtmpEntry{Type: UtmpLoginProcess, PID: 14, Line: idle.line, User: "LOGIN"}, // getty
		UtmpEntry{Type: UtmpUserProcess, PID: 15, Line: idle.line},                 // no user
		UtmpEntry{Type: UtmpUserProcess, PID: 16, Line: ":0", User: "dave"},        // X display
	)
	msg := "gostree-agent: rebooting into commit 0123abcd in 10 minutes\nSave your work.\x1b[2J"
	n, err := WarnUsers(p, "/dev", msg)
	if n != 1 {
		t.Fatalf("wrote %d terminals, want 1 (alice); err %v", n, err)
	}
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "terminal "+bob.line) {
		t.Fatalf("want a deadline error for bob's stuck terminal, got %v", err)
	}
	got := alice.readUntil(t, "Save your work.?[2J")
	t.Logf("%s received %q; error for the rest: %v", alice.line, got, err)
	// The tty's ONLCR adds a CR before each LF; the sanitized text is there.
	if !strings.Contains(got, "gostree-agent: rebooting into commit 0123abcd in 10 minutes\r") || strings.Contains(got, "\x1b") {
		t.Fatalf("alice got %q", got)
	}
	// Nothing was written to the idle terminal, nor (given up) to bob's:
	// a marker written now is the first thing their masters read.
	bob.resume(t)
	for _, p := range []*pty{idle, bob} {
		p.slave.WriteString("MARKER")
		if got := p.readUntil(t, "MARKER"); got != "MARKER" {
			t.Fatalf("%s got %q before the marker", p.line, got)
		}
	}
}

func TestWarnUsersRefuses(t *testing.T) {
	victim := openPty(t)
	dev := t.TempDir()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("keep"), 0o644)
	os.Mkdir(filepath.Join(outside, "pts"), 0o755)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(secret, filepath.Join(dev, "evil")))
	must(os.Symlink(outside, filepath.Join(dev, "subdir")))
	must(os.Symlink("/dev/"+victim.line, filepath.Join(dev, "ttylink")))
	must(os.WriteFile(filepath.Join(dev, "regular"), nil, 0o644))
	must(os.Mkdir(filepath.Join(dev, "pts"), 0o755))
	must(os.Symlink("/dev/"+victim.line, filepath.Join(dev, "pts", "7")))

	lines := map[string]string{
		"evil":          "symbolic link refused",
		"subdir/secret": "symbolic link (refused)",
		"ttylink":       "symbolic link refused",
		"pts/7":         "symbolic link refused",
		"regular":       "not a character device",
		"../secret":     "is not a terminal name",
		"/etc/passwd":   "is not a terminal name",
		"a//b":          "is not a terminal name",
		"missing":       "no such file",
	}
	var entries []UtmpEntry
	for l := range lines {
		entries = append(entries, UtmpEntry{Type: UtmpUserProcess, Line: l, User: "mallory"})
	}
	n, err := WarnUsers(utmpFile(t, entries...), dev, "hello")
	if n != 0 || err == nil {
		t.Fatalf("n=%d err=%v", n, err)
	}
	for l, want := range lines {
		found := false
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			if strings.HasPrefix(e.Error(), "terminal "+l+":") {
				found = true
				if !strings.Contains(e.Error(), want) {
					t.Errorf("%s: %v, want %q", l, e, want)
				}
			}
		}
		if !found {
			t.Errorf("no error for %s in %v", l, err)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "keep" {
		t.Fatalf("outside file changed: %q", b)
	}
	// A character device that is not a terminal is not even opened.
	n, err = WarnUsers(utmpFile(t, UtmpEntry{Type: UtmpUserProcess, Line: "null", User: "m"}), "/dev", "hello")
	if n != 0 || err == nil || !strings.Contains(err.Error(), "is not a terminal (no tty driver") {
		t.Fatalf("/dev/null: n=%d err=%v", n, err)
	}
	victim.slave.WriteString("MARKER")
	if got := victim.readUntil(t, "MARKER"); got != "MARKER" {
		t.Fatalf("the terminal behind the symlinks got %q", got)
	}
}

func TestWarnUsersUtmpProblems(t *testing.T) {
	_, err := WarnUsers(filepath.Join(t.TempDir(), "none"), "/dev", "x")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing utmp: %v", err)
	}
	// A torn last record: the whole records are still used.
	alice := openPty(t)
	p := utmpFile(t, UtmpEntry{Type: UtmpUserProcess, Line: alice.line, User: "alice"})
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{7, 0, 0})
	f.Close()
	n, err := WarnUsers(p, "", "torn")
	if n != 1 || err == nil || !strings.Contains(err.Error(), "not a whole 384-byte record") {
		t.Fatalf("n=%d err=%v", n, err)
	}
	alice.readUntil(t, "torn")
}

func TestWallText(t *testing.T) {
	got := string(wallText("Reboot\tnow\r\n\x1b[31mred\u009b\x00ok\n\n"))
	if want := "\r\nReboot\tnow\r\n?[31mred??ok\r\n\r\n"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// A /proc/tty/drivers as Debian 12's kernel writes it.
const sampleDrivers = `/dev/tty             /dev/tty        5       0 system:/dev/tty
/dev/console         /dev/console    5       1 system:console
/dev/ptmx            /dev/ptmx       5       2 system
/dev/vc/0            /dev/vc/0       4       0 system:vtmaster
serial               /dev/ttyS       4      64-95 serial
pty_slave            /dev/pts      136 0-1048575 pty:slave
pty_master           /dev/ptm      128 0-1048575 pty:master
unknown              /dev/tty        4 1-63 console
`

func TestTTYDriverHas(t *testing.T) {
	for _, tt := range []struct {
		major, minor uint32
		want         bool
	}{
		{136, 0, true}, {136, 1048575, true}, {4, 1, true}, {4, 63, true}, {4, 64, true}, {4, 95, true}, {5, 1, true},
		{4, 96, false}, {128, 3, false}, {1, 3, false}, {136, 1048576, false}, {10, 130, false},
	} {
		if got := ttyDriverHas(sampleDrivers, tt.major, tt.minor); got != tt.want {
			t.Errorf("%d:%d = %v, want %v", tt.major, tt.minor, got, tt.want)
		}
	}
	// The real file has this machine's pty slaves.
	if b, err := os.ReadFile(ttyDriversFile); err == nil && !strings.Contains(string(b), "pty:slave") {
		t.Fatalf("%s has no pty slaves:\n%s", ttyDriversFile, b)
	}
}

func TestUserSessions(t *testing.T) {
	p := utmpFile(t,
		UtmpEntry{Type: UtmpBootTime, Line: "~", User: "reboot"},
		UtmpEntry{Type: UtmpUserProcess, PID: 10, Line: "pts/0", User: "alice", Host: "192.0.2.7"},
		UtmpEntry{Type: UtmpDeadProcess, PID: 11, Line: "pts/1", User: "bob"},
		UtmpEntry{Type: UtmpUserProcess, PID: 12, Line: "tty1"},
		UtmpEntry{Type: UtmpUserProcess, PID: 13, Line: ":0", User: "carol"},
	)
	got, err := UserSessions(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].User != "alice" || got[0].Host != "192.0.2.7" || got[1].User != "carol" {
		t.Fatalf("sessions %+v", got)
	}
	if _, err := UserSessions(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
