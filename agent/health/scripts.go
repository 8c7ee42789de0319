package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// outputGrace is how long output is still read after a script's process
// group was killed: only a process that left the group (setsid) can still
// hold the pipe then, and it must not block the run.
const outputGrace = 2 * time.Second

// backupSuffixes mark files left by package managers and editors; like
// run-parts(8), they are never run.
var backupSuffixes = []string{
	"~", ".rpmsave", ".rpmnew", ".rpmorig",
	".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".dpkg-bak",
	".ucf-old", ".ucf-new", ".ucf-dist", ".swp", ".bak", ".orig",
}

// runDir runs the executable files of dir in lexical order.
func runDir(ctx context.Context, c Config, dir string, required bool) ([]Check, []string) {
	label := filepath.Base(filepath.Clean(dir))
	fail := func(err error) []Check {
		return []Check{{Name: label, Required: required, Err: err.Error()}}
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no directory, no checks
	}
	real, err := filepath.Abs(dir)
	if err == nil {
		real, err = filepath.EvalSymlinks(real)
	}
	if err != nil {
		return fail(fmt.Errorf("cannot read check directory: %w", err)), nil
	}
	if err := untrusted(real, true); err != nil {
		return fail(fmt.Errorf("refusing to run the checks in %s: %w", dir, err)), nil
	}
	entries, err := os.ReadDir(real) // sorted by name
	if err != nil {
		return fail(fmt.Errorf("cannot read check directory: %w", err)), nil
	}
	var checks []Check
	var skipped []string
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		name := label + "/" + e.Name()
		if why := skipName(e.Name()); why != "" {
			skipped = append(skipped, name+" ("+why+")")
			continue
		}
		path := filepath.Join(real, e.Name())
		fi, err := os.Stat(path)
		switch {
		case err != nil && e.Type()&fs.ModeSymlink != 0:
			skipped = append(skipped, name+" (broken symbolic link)")
			continue
		case err != nil:
			checks = append(checks, Check{Name: name, Required: required, Err: fmt.Sprintf("cannot stat: %v", err)})
			continue
		case !fi.Mode().IsRegular():
			skipped = append(skipped, name+" (not a regular file)")
			continue
		case fi.Mode().Perm()&0o111 == 0:
			skipped = append(skipped, name+" (not executable)")
			continue
		}
		target, err := filepath.EvalSymlinks(path)
		if err == nil {
			err = untrusted(target, false)
		}
		if err != nil {
			checks = append(checks, Check{Name: name, Required: required, Err: fmt.Sprintf("refused: %v", err)})
			continue
		}
		checks = append(checks, runScript(ctx, c, target, name, required))
	}
	return checks, skipped
}

// skipName says why a directory entry is not a check by its name alone.
func skipName(name string) string {
	if strings.HasPrefix(name, ".") {
		return "hidden file"
	}
	for _, s := range backupSuffixes {
		if strings.HasSuffix(name, s) {
			return "backup file"
		}
	}
	return ""
}

// untrusted explains why running path as this user (root, normally) is
// unsafe, or returns nil: path and every directory above it must be owned
// by root or by this user, and must not be writable by anyone else —
// otherwise whoever can write there can make us run their code. A sticky
// world-writable directory (/tmp) is accepted above path, where others
// cannot rename or delete what is not theirs, but never as path itself:
// anyone could add a script to it. path must be free of symbolic links
// (filepath.EvalSymlinks).
func untrusted(path string, isDir bool) error {
	euid := uint32(os.Geteuid())
	leaf := true
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no ownership information", p)
		}
		mode := fi.Mode()
		if leaf && isDir && !mode.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		if st.Uid != 0 && st.Uid != euid {
			return fmt.Errorf("%s is owned by uid %d, not by root", p, st.Uid)
		}
		shielded := !leaf && mode&fs.ModeSticky != 0
		if mode.Perm()&0o002 != 0 && !shielded {
			return fmt.Errorf("%s is world-writable (mode %v)", p, mode)
		}
		if mode.Perm()&0o020 != 0 && st.Gid != 0 && !shielded {
			return fmt.Errorf("%s is writable by group %d (mode %v)", p, st.Gid, mode)
		}
		if p == "/" || p == "." || p == filepath.Dir(p) {
			return nil
		}
		leaf = false
	}
}

// scriptEnv is our environment without what is meant for this process
// alone (systemd's notification socket, watchdog and socket activation),
// plus c.Env.
func scriptEnv(c Config) []string {
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		switch k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, e)
	}
	return append(env, c.Env...)
}

// runScript runs one script in its own process group with stdin from
// /dev/null, stdout and stderr into one pipe whose tail is kept, and kills
// the whole group when the timeout passes — and when the script exits, so
// that nothing it started in the background outlives the check.
func runScript(ctx context.Context, c Config, path, name string, required bool) (ck Check) {
	ck = Check{Name: name, Required: required}
	start := time.Now()
	defer func() { ck.Duration = time.Since(start) }()

	pr, pw, err := os.Pipe()
	if err != nil {
		ck.Err = fmt.Sprintf("cannot create output pipe: %v", err)
		return ck
	}
	defer pr.Close()
	cmd := exec.Command(path)
	cmd.Dir = "/"
	cmd.Env = scriptEnv(c)
	cmd.Stdout, cmd.Stderr = pw, pw // *os.File: handed to the child as is, no copying goroutine
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		ck.Err = fmt.Sprintf("cannot start: %v", err)
		return ck
	}
	pgid := cmd.Process.Pid

	out := &tail{max: MaxOutput}
	copied := make(chan struct{})
	go func() {
		io.Copy(out, pr)
		close(copied)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	timer := time.NewTimer(c.Timeout)
	defer timer.Stop()
	var werr error
	timedOut, cancelled := false, false
	select {
	case werr = <-waited:
	case <-timer.C:
		timedOut = true
	case <-ctx.Done():
		cancelled = true
	}
	// The group's id is the script's pid, which stays reserved while any
	// member of the group lives, so this never hits an unrelated process.
	syscall.Kill(-pgid, syscall.SIGKILL)
	if timedOut || cancelled {
		cmd.Process.Kill() // in case the script itself left its group
		werr = <-waited
	}
	select {
	case <-copied:
	case <-time.After(outputGrace):
		pr.SetReadDeadline(time.Now())
		<-copied
		out.Write([]byte("\n[gostree: stopped reading: a process that left the check's process group still holds its output open]\n"))
	}
	ck.Output = out.String()
	switch {
	case timedOut:
		ck.Err = fmt.Sprintf("timed out after %v", c.Timeout)
	case cancelled:
		ck.Err = fmt.Sprintf("interrupted: %v", ctx.Err())
	case werr != nil:
		ck.Err = werr.Error() // "exit status 3", "signal: segmentation fault"
	default:
		ck.OK = true
	}
	return ck
}

// tail keeps the last max bytes written to it.
type tail struct {
	max     int
	buf     []byte
	dropped int64
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.dropped += int64(len(t.buf) + len(p) - t.max)
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.dropped += int64(over)
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) String() string { return clip(string(t.buf), t.max, t.dropped > 0) }

const truncatedMarker = "[gostree: earlier output dropped]\n"

// clip makes s valid UTF-8 of at most max bytes, keeping its end; when it
// had to drop something (or truncated says the caller already did), the
// result starts with a marker saying so.
func clip(s string, max int, truncated bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max && !truncated {
		return s
	}
	keep := max - len(truncatedMarker)
	if keep < 0 {
		keep = 0
	}
	if len(s) > keep {
		cut := len(s) - keep
		for cut < len(s) && !isRuneStart(s[cut]) {
			cut++
		}
		s = s[cut:]
	}
	return truncatedMarker + s
}
