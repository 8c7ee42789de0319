package reboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults of WarnUsers.
const (
	DefaultUtmpPath = "/run/utmp"
	DefaultDevDir   = "/dev"
	// TerminalWriteTimeout is how long WarnUsers waits for one terminal
	// that does not take the message (a stopped or flow-controlled tty).
	TerminalWriteTimeout = time.Second
)

// utmp record layout: glibc's struct utmp on x86_64 and the other 64-bit
// Linux ABIs that keep 32-bit ut_session and ut_tv ("__WORDSIZE_TIME64_COMPAT32").
const (
	UtmpRecordSize = 384
	utOffPID       = 4
	utOffLine      = 8 // char[32]
	utOffID        = 40
	utOffUser      = 44 // char[32]
	utOffHost      = 76 // char[256]
	utOffSession   = 336
	utOffTvSec     = 340
	utOffTvUsec    = 344
	utOffAddr      = 348 // int32[4]
	utLineLen      = 32
	utUserLen      = 32
	utHostLen      = 256
	utIDLen        = 4
	// maxUtmp bounds how much of a utmp file is read (a busy host has a
	// few hundred records; this is tens of thousands).
	maxUtmp = 16 << 20
)

// Utmp record types (ut_type) from <utmp.h>.
const (
	UtmpEmpty        = 0
	UtmpRunLevel     = 1
	UtmpBootTime     = 2
	UtmpNewTime      = 3
	UtmpOldTime      = 4
	UtmpInitProcess  = 5
	UtmpLoginProcess = 6
	UtmpUserProcess  = 7
	UtmpDeadProcess  = 8
	UtmpAccounting   = 9
)

// UtmpEntry is one utmp record.
type UtmpEntry struct {
	Type    int16
	PID     int32
	Line    string // terminal below /dev, such as "pts/0" or "tty1"
	ID      string // inittab id or the terminal suffix
	User    string
	Host    string
	Session int32
	Time    time.Time
	Addr    netip.Addr // remote address; invalid when none
}

// ParseUtmp reads utmp records (glibc x86_64 layout, UtmpRecordSize
// bytes each). Bytes after the last whole record give an error, together
// with the records before them (which are good).
func ParseUtmp(b []byte) ([]UtmpEntry, error) {
	n := len(b) / UtmpRecordSize
	out := make([]UtmpEntry, 0, n)
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		r := b[i*UtmpRecordSize : (i+1)*UtmpRecordSize]
		e := UtmpEntry{
			Type:    int16(le.Uint16(r[0:])),
			PID:     int32(le.Uint32(r[utOffPID:])),
			Line:    cstring(r[utOffLine : utOffLine+utLineLen]),
			ID:      cstring(r[utOffID : utOffID+utIDLen]),
			User:    cstring(r[utOffUser : utOffUser+utUserLen]),
			Host:    cstring(r[utOffHost : utOffHost+utHostLen]),
			Session: int32(le.Uint32(r[utOffSession:])),
		}
		sec, usec := int32(le.Uint32(r[utOffTvSec:])), int32(le.Uint32(r[utOffTvUsec:]))
		if usec < 0 || usec >= 1000000 {
			usec = 0 // not a valid tv_usec: keep the seconds only
		}
		if sec != 0 || usec != 0 {
			e.Time = time.Unix(int64(sec), int64(usec)*1000).UTC()
		}
		a := r[utOffAddr : utOffAddr+16]
		switch {
		case bytes.Equal(a, make([]byte, 16)):
		case bytes.Equal(a[4:], make([]byte, 12)):
			e.Addr = netip.AddrFrom4([4]byte(a[:4]))
		default:
			e.Addr = netip.AddrFrom16([16]byte(a))
		}
		out = append(out, e)
	}
	if rest := len(b) % UtmpRecordSize; rest != 0 {
		return out, fmt.Errorf("utmp: %d bytes after record %d are not a whole %d-byte record", rest, n, UtmpRecordSize)
	}
	return out, nil
}

// cstring is a fixed-size C char array up to its first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// WarnUsers writes msg to the terminal of every logged-in user, as wall(1)
// does: each USER_PROCESS record of utmpPath (default /run/utmp) with a
// user and a terminal line names devDir/line (devDir default /dev; a
// "/dev/" prefix on a line is dropped). Lines starting with ":" (X
// displays) are not terminals and are skipped. It returns how many
// terminals were written.
//
// Safety: no symbolic link is followed below devDir and ".." is refused,
// so a forged utmp line cannot name a file elsewhere; only character
// devices that are terminals are written (never /dev/null or a disk); the
// terminal is opened O_WRONLY|O_NONBLOCK|O_NOCTTY, so it never becomes the
// agent's controlling terminal, and a terminal that does not take the
// message within TerminalWriteTimeout is given up (terminals are written
// concurrently, so one stuck terminal does not delay the others). Like
// systemd's shutdown warnings, and unlike wall for ordinary users, mesg n
// is not honoured: this is a notice that the machine goes down.
//
// The message is sanitized: newlines become CR LF, tabs stay, other
// control characters become '?'; it is framed by empty lines.
//
// The error joins a problem with the utmp file and one error per terminal
// that could not be written; n counts the terminals written either way.
// A missing utmp file is an error wrapping fs.ErrNotExist.
func WarnUsers(utmpPath, devDir, msg string) (int, error) {
	if utmpPath == "" {
		utmpPath = DefaultUtmpPath
	}
	if devDir == "" {
		devDir = DefaultDevDir
	}
	b, err := readUtmp(utmpPath)
	if err != nil {
		return 0, err
	}
	entries, perr := ParseUtmp(b)
	var errs []error
	if perr != nil {
		errs = append(errs, fmt.Errorf("%s: %w", utmpPath, perr))
	}
	lines := userTerminals(entries)
	text := wallText(msg)

	var (
		mu   sync.Mutex
		n    int
		wg   sync.WaitGroup
		sema = make(chan struct{}, 16)
	)
	for _, line := range lines {
		wg.Add(1)
		sema <- struct{}{}
		go func() {
			defer func() { <-sema; wg.Done() }()
			err := writeTerminal(devDir, line, text)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("terminal %s: %w", clip(line), err))
				return
			}
			n++
		}()
	}
	wg.Wait()
	return n, errors.Join(errs...)
}

func readUtmp(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUtmp+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxUtmp {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a utmp file", path, maxUtmp)
	}
	return b, nil
}

// UserSessions returns the USER_PROCESS records with a user name in
// utmpPath (default /run/utmp): who is logged in, for an agent that
// postpones a reboot while people work (as Zincati does). A torn last
// record gives an error together with the sessions before it.
func UserSessions(utmpPath string) ([]UtmpEntry, error) {
	if utmpPath == "" {
		utmpPath = DefaultUtmpPath
	}
	b, err := readUtmp(utmpPath)
	if err != nil {
		return nil, err
	}
	entries, err := ParseUtmp(b)
	if err != nil {
		err = fmt.Errorf("%s: %w", utmpPath, err)
	}
	var out []UtmpEntry
	for _, e := range entries {
		if e.Type == UtmpUserProcess && e.User != "" {
			out = append(out, e)
		}
	}
	return out, err
}

// userTerminals is the terminal lines of logged-in users, each once, in
// utmp order.
func userTerminals(entries []UtmpEntry) []string {
	var lines []string
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Type != UtmpUserProcess || e.User == "" || e.Line == "" || strings.HasPrefix(e.Line, ":") {
			continue
		}
		line := strings.TrimPrefix(e.Line, "/dev/")
		if !seen[line] {
			seen[line] = true
			lines = append(lines, line)
		}
	}
	return lines
}

// wallText frames and sanitizes a message for a terminal.
func wallText(msg string) []byte {
	var b strings.Builder
	b.WriteString("\r\n")
	for _, r := range strings.TrimRight(msg, "\r\n") {
		switch {
		case r == '\n':
			b.WriteString("\r\n")
		case r == '\t':
			b.WriteRune(r)
		case r == '\r':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString("\r\n\r\n")
	return []byte(b.String())
}

// writeTerminal writes text to devDir/line if that is a terminal. The
// device is looked at (lstat) before it is opened: opening some character
// devices has effects (a watchdog starts counting, a tape rewinds), so
// only devices of a tty driver are opened at all.
func writeTerminal(devDir, line string, text []byte) error {
	dfd, leaf, err := openParent(devDir, line)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	path := filepath.Join(devDir, line)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, leaf, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%s: symbolic link refused", path)
	case st.Mode&unix.S_IFMT != unix.S_IFCHR:
		return fmt.Errorf("%s: not a character device", path)
	}
	if err := checkTTYDevice(st.Rdev); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fd, err := unix.Openat(dfd, leaf, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	// The descriptor is non-blocking, so os.NewFile puts it in Go's
	// poller and the write deadline works (without the poller a full
	// terminal would give EAGAIN at once, which is as good).
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st2 unix.Stat_t
	if err := unix.Fstat(fd, &st2); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st2.Rdev != st.Rdev || st2.Ino != st.Ino || st2.Mode&unix.S_IFMT != unix.S_IFCHR {
		return fmt.Errorf("%s: replaced while being opened", path)
	}
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return fmt.Errorf("%s: not a terminal: %w", path, err)
	}
	f.SetWriteDeadline(time.Now().Add(TerminalWriteTimeout))
	if _, err := f.Write(text); err != nil {
		return err
	}
	return nil
}

// openParent opens the directory of rel below dir and returns it with the
// last element of rel. Absolute names, ".." and symbolic links to
// directories along the way are refused.
func openParent(dir, rel string) (int, string, error) {
	bad := func() (int, string, error) {
		return -1, "", fmt.Errorf("%q is not a terminal name below %s", clip(rel), dir)
	}
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return bad()
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return bad()
		}
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	for i, p := range parts[:len(parts)-1] {
		nfd, err := unix.Openat(dfd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(dfd)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				err = fmt.Errorf("not a directory or a symbolic link (refused): %w", err)
			}
			return -1, "", &os.PathError{Op: "open", Path: filepath.Join(dir, filepath.Join(parts[:i+1]...)), Err: err}
		}
		dfd = nfd
	}
	return dfd, parts[len(parts)-1], nil
}

// ttyDriversFile lists the kernel's tty drivers with their device numbers.
const ttyDriversFile = "/proc/tty/drivers"

// checkTTYDevice accepts a device number that belongs to a tty driver in
// /proc/tty/drivers (pty slaves are not in sysfs, so this is the one
// complete list), except pty masters.
func checkTTYDevice(rdev uint64) error {
	b, err := os.ReadFile(ttyDriversFile)
	if err != nil {
		return fmt.Errorf("cannot tell whether it is a terminal: %w", err)
	}
	major, minor := unix.Major(rdev), unix.Minor(rdev)
	if ttyDriverHas(string(b), major, minor) {
		return nil
	}
	return fmt.Errorf("device %d:%d is not a terminal (no tty driver in %s has it)", major, minor, ttyDriversFile)
}

// ttyDriverHas looks major:minor up in the text of /proc/tty/drivers:
// lines "name  /dev/path  major  minor[-minor]  type".
func ttyDriverHas(drivers string, major, minor uint32) bool {
	for _, l := range strings.Split(drivers, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[len(f)-1] == "pty:master" {
			continue
		}
		// The name may contain spaces; count from the end.
		maj, err := strconv.ParseUint(f[len(f)-3], 10, 32)
		if err != nil || uint32(maj) != major {
			continue
		}
		lo, hi, ok := strings.Cut(f[len(f)-2], "-")
		if !ok {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 32)
		h, err2 := strconv.ParseUint(hi, 10, 32)
		if err1 == nil && err2 == nil && uint64(minor) >= l && uint64(minor) <= h {
			return true
		}
	}
	return false
}
