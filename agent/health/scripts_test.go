package health

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// script writes an executable shell script dir/name with body.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkDirs returns a fresh, safe (0755) pair of check directories.
func checkDirs(t *testing.T) (req, want string) {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	req, want = filepath.Join(root, "required.d"), filepath.Join(root, "wanted.d")
	for _, d := range []string{req, want} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return req, want
}

func names(cs []Check) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func find(t *testing.T, r Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in %v", name, names(r.Checks))
	return Check{}
}

func TestScripts(t *testing.T) {
	req, want := checkDirs(t)
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "1000")
	script(t, req, "10-ok", `echo "commit=$GOSTREE_BOOTED_COMMIT notify=${NOTIFY_SOCKET-unset} watchdog=${WATCHDOG_USEC-unset}"; echo "stdin=$(readlink /proc/self/fd/0) cwd=$(pwd)"`)
	script(t, req, "20-fail", `echo to-stdout; echo to-stderr >&2; echo again; exit 3`)
	script(t, req, "05-first", `exit 0`)
	script(t, req, ".hidden", `exit 1`)
	script(t, req, "30-old~", `exit 1`)
	script(t, req, "30-x.rpmsave", `exit 1`)
	script(t, req, "30-x.dpkg-old", `exit 1`)
	if err := os.WriteFile(filepath.Join(req, "README"), []byte("not a check\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(req, "40-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/check", filepath.Join(req, "50-dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(req, "05-first"), filepath.Join(req, "60-link")); err != nil {
		t.Fatal(err)
	}
	script(t, want, "10-wanted-fails", `echo wanted broke; exit 1`)
	script(t, want, "20-wanted-ok", `true`)

	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: want, Env: []string{"GOSTREE_BOOTED_COMMIT=abc123"}})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"required.d/05-first", "required.d/10-ok", "required.d/20-fail", "required.d/60-link", "wanted.d/10-wanted-fails", "wanted.d/20-wanted-ok"}
	if got := names(r.Checks); !reflect.DeepEqual(got, wantNames) {
		t.Fatalf("checks ran: %v, want %v", got, wantNames)
	}
	wantSkipped := []string{
		"required.d/.hidden (hidden file)",
		"required.d/30-old~ (backup file)",
		"required.d/30-x.dpkg-old (backup file)",
		"required.d/30-x.rpmsave (backup file)",
		"required.d/40-dir (not a regular file)",
		"required.d/50-dangling (broken symbolic link)",
		"required.d/README (not executable)",
	}
	if !reflect.DeepEqual(r.Skipped, wantSkipped) {
		t.Errorf("skipped: %q, want %q", r.Skipped, wantSkipped)
	}
	ok := find(t, r, "required.d/10-ok")
	if !ok.OK || !ok.Required || ok.Err != "" {
		t.Errorf("10-ok: %+v", ok)
	}
	if want := "commit=abc123 notify=unset watchdog=unset\nstdin=/dev/null cwd=/\n"; ok.Output != want {
		t.Errorf("10-ok output %q, want %q", ok.Output, want)
	}
	fail := find(t, r, "required.d/20-fail")
	if fail.OK || fail.Err != "exit status 3" || fail.Output != "to-stdout\nto-stderr\nagain\n" || fail.Duration <= 0 {
		t.Errorf("20-fail: %+v", fail)
	}
	wf := find(t, r, "wanted.d/10-wanted-fails")
	if wf.OK || wf.Required || wf.Err != "exit status 1" {
		t.Errorf("wanted failure: %+v", wf)
	}
	if r.OK {
		t.Error("report OK although a required check failed")
	}
	if got := names(r.Failed()); !reflect.DeepEqual(got, []string{"required.d/20-fail"}) {
		t.Errorf("Failed: %v", got)
	}
	if got, want := r.Summary(), "1 check failed: required.d/20-fail (exit status 3); 1 wanted check failed: wanted.d/10-wanted-fails (exit status 1)"; got != want {
		t.Errorf("Summary %q, want %q", got, want)
	}
	if id, err := BootID(); err != nil || r.BootID != id {
		t.Errorf("boot id %q, want %q (%v)", r.BootID, id, err)
	}
	if r.Time.IsZero() {
		t.Error("no time")
	}

	// Only the wanted check failing leaves the report OK.
	os.Remove(filepath.Join(req, "20-fail"))
	r, err = Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || len(r.Failed()) != 0 || len(r.WantedFailed()) != 1 {
		t.Errorf("wanted failure only: OK=%v failed=%v", r.OK, names(r.Failed()))
	}
	if got, want := r.Summary(), "all 3 required checks passed; 1 wanted check failed: wanted.d/10-wanted-fails (exit status 1)"; got != want {
		t.Errorf("Summary %q, want %q", got, want)
	}
	os.Remove(filepath.Join(want, "10-wanted-fails"))
	r, _ = Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if got, want := r.Summary(), "4 checks passed"; !r.OK || got != want {
		t.Errorf("all pass: OK=%v Summary %q, want %q", r.OK, got, want)
	}
}

func TestRelativeDir(t *testing.T) {
	req, _ := checkDirs(t)
	script(t, req, "10-ok", `exit 0`)
	t.Chdir(filepath.Dir(req))
	r, err := Run(context.Background(), Config{RequiredDir: "required.d", WantedDir: "wanted.d"})
	if err != nil || !r.OK || len(r.Checks) != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	// The directories above a relative one are checked too.
	os.Chmod(filepath.Dir(req), 0o777)
	r, _ = Run(context.Background(), Config{RequiredDir: "required.d", WantedDir: "wanted.d"})
	if r.OK || len(r.Checks) != 2 || !strings.Contains(r.Checks[0].Err, filepath.Dir(req)+" is world-writable") {
		t.Errorf("%+v", r)
	}
}

func TestMissingDirsMeanNoChecks(t *testing.T) {
	root := t.TempDir()
	r, err := Run(context.Background(), Config{RequiredDir: filepath.Join(root, "nope"), WantedDir: filepath.Join(root, "nope2")})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || len(r.Checks) != 0 || r.Summary() != "no health checks configured" {
		t.Errorf("%+v %q", r, r.Summary())
	}
}

// gone waits (bounded) until pid has exited: it no longer exists, or is a
// zombie waiting for a parent that does not reap (PID 1 of a container).
func gone(t *testing.T, pid int) bool {
	t.Helper()
	for i := 0; i < 200; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		// "pid (comm) S ...": the state follows the last ')'.
		s := string(b)
		if j := strings.LastIndexByte(s, ')'); j > 0 && strings.HasPrefix(s[j+1:], " Z") {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	req, want := checkDirs(t)
	tmp := t.TempDir()
	child := filepath.Join(tmp, "child.pid")
	script(t, req, "10-hangs", `echo started; sleep 300 & echo $! > `+child+`; sleep 300`)
	script(t, req, "20-after", `echo still runs`)
	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: want, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h := find(t, r, "required.d/10-hangs")
	if h.OK || h.Err != "timed out after 1s" || h.Output != "started\n" || h.Duration < time.Second {
		t.Errorf("hanging check: %+v", h)
	}
	if a := find(t, r, "required.d/20-after"); !a.OK {
		t.Errorf("check after the timeout: %+v", a)
	}
	if pid := readPid(t, child); !gone(t, pid) {
		t.Errorf("background child %d of the timed-out check still runs", pid)
	}
	if got := r.Summary(); got != "1 check failed: required.d/10-hangs (timed out after 1s)" {
		t.Errorf("Summary %q", got)
	}
}

func TestLeftoverProcessesKilled(t *testing.T) {
	req, want := checkDirs(t)
	tmp := t.TempDir()
	child := filepath.Join(tmp, "child.pid")
	// The background sleep keeps the output pipe open: without killing
	// the group, reading the output would wait for it.
	script(t, req, "10-forks", `sleep 300 & echo $! > `+child+`; echo done`)
	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if err != nil {
		t.Fatal(err)
	}
	c := find(t, r, "required.d/10-forks")
	if !c.OK || c.Output != "done\n" {
		t.Errorf("%+v", c)
	}
	if pid := readPid(t, child); !gone(t, pid) {
		t.Errorf("background child %d outlived its check", pid)
	}
}

func TestEscapedProcessDoesNotBlock(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	req, want := checkDirs(t)
	tmp := t.TempDir()
	child := filepath.Join(tmp, "child.pid")
	script(t, req, "10-escapes", `setsid sh -c 'echo $$ > `+child+`; exec sleep 300' & while [ ! -s `+child+` ]; do sleep 0.1; done; echo done`)
	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if err != nil {
		t.Fatal(err)
	}
	pid := readPid(t, child)
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	})
	c := find(t, r, "required.d/10-escapes")
	if !c.OK || !strings.HasPrefix(c.Output, "done\n") || !strings.Contains(c.Output, "still holds its output open") {
		t.Errorf("%+v", c)
	}
}

func TestOutputTail(t *testing.T) {
	req, want := checkDirs(t)
	// 200 000 bytes of 'é' (2 bytes each) then a last line: the tail must
	// be cut on a character boundary and keep the end.
	script(t, req, "10-noisy", `i=0; while [ $i -lt 1000 ]; do printf 'éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé'; i=$((i+1)); done; echo; echo LAST LINE; exit 1`)
	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if err != nil {
		t.Fatal(err)
	}
	c := find(t, r, "required.d/10-noisy")
	if len(c.Output) > MaxOutput {
		t.Errorf("output %d bytes, more than %d", len(c.Output), MaxOutput)
	}
	if len(c.Output) < MaxOutput-8 {
		t.Errorf("output %d bytes: kept much less than %d", len(c.Output), MaxOutput)
	}
	if !strings.HasPrefix(c.Output, truncatedMarker) || !strings.HasSuffix(c.Output, "éé\nLAST LINE\n") {
		t.Errorf("output starts %q, ends %q", c.Output[:40], c.Output[len(c.Output)-20:])
	}
	if !utf8.ValidString(c.Output) {
		t.Error("output is not valid UTF-8")
	}
	if c.Err != "exit status 1" {
		t.Errorf("err %q", c.Err)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 10}
	tl.Write([]byte("abc"))
	tl.Write([]byte("defgh"))
	if got := tl.String(); got != "abcdefgh" {
		t.Errorf("%q", got)
	}
	tl.Write([]byte("ijklm"))
	if string(tl.buf) != "defghijklm" || tl.dropped != 3 {
		t.Errorf("buf %q dropped %d", tl.buf, tl.dropped)
	}
	tl.Write([]byte("0123456789ABCDEF"))
	if string(tl.buf) != "6789ABCDEF" || tl.dropped != 19 {
		t.Errorf("buf %q dropped %d", tl.buf, tl.dropped)
	}
	// clip: invalid UTF-8 is replaced, the cut lands on a rune start.
	if got := clip("a\xffb", 100, false); got != "a\uFFFDb" {
		t.Errorf("%q", got)
	}
	long := strings.Repeat("€", 100) // 300 bytes
	got := clip(long, len(truncatedMarker)+10, false)
	if got != truncatedMarker+"€€€" {
		t.Errorf("%q", got)
	}
	if got := clip("xyz", 100, true); got != truncatedMarker+"xyz" {
		t.Errorf("%q", got)
	}
}

func TestInterrupted(t *testing.T) {
	req, want := checkDirs(t)
	tmp := t.TempDir()
	started := filepath.Join(tmp, "started")
	script(t, req, "10-slow", `touch `+started+`; sleep 300`)
	script(t, req, "20-never", `true`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; i < 600; i++ {
			if _, err := os.Stat(started); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	r, err := Run(ctx, Config{RequiredDir: req, WantedDir: want})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err %v", err)
	}
	if r.OK || len(r.Checks) != 1 || r.Checks[0].Err != "interrupted: context canceled" {
		t.Errorf("%+v", r)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Timeout: -time.Second},
		{RequiredUnits: []string{""}},
		{RequiredUnits: []string{"foo bar.service"}},
		{WantedUnits: []string{"../x.service"}},
		{WantedUnits: []string{"sshd.service;reboot"}},
		{RequiredUnits: []string{strings.Repeat("a", 250) + ".service"}},
		{Env: []string{"NOEQUALS"}},
		{Env: []string{"=value"}},
	}
	for _, c := range bad {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run accepted %+v", c)
		}
	}
	good := Config{RequiredUnits: []string{"sshd.service", "-.mount", "getty@tty1.service", "sys-devices-x\\x2dy.device", "sshd"}, Env: []string{"A=", "B=c=d"}}
	if err := good.Validate(); err != nil {
		t.Error(err)
	}
}
