package health

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeSystemctl writes a systemctl stand-in answering `show` from state
// files: STATE/UNIT.N is the answer to the N-th question about UNIT (the
// last one repeats), STATE/UNIT.fail makes it fail with that message.
// Every call's arguments are appended to STATE/calls.
type fakeSystemctl struct {
	path, state string
}

func newFakeSystemctl(t *testing.T) *fakeSystemctl {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "systemctl")
	body := `#!/bin/sh
state='` + state + `'
echo "$*" >> "$state/calls"
[ "$1" = show ] || { echo "fake systemctl: unexpected $*" >&2; exit 2; }
for unit; do :; done
if [ -e "$state/$unit.fail" ]; then cat "$state/$unit.fail" >&2; exit 1; fi
n=$(cat "$state/$unit.count" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$state/$unit.count"
while [ $n -gt 0 ] && [ ! -e "$state/$unit.$n" ]; do n=$((n - 1)); done
if [ $n -eq 0 ]; then
  # what systemctl says about a unit it does not know
  printf 'Id=%s\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\n' "$unit"
  exit 0
fi
cat "$state/$unit.$n"
`
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return &fakeSystemctl{path: path, state: state}
}

// unit sets the answers for unit, in order.
func (f *fakeSystemctl) unit(t *testing.T, unit string, answers ...string) {
	t.Helper()
	for i, a := range answers {
		if err := os.WriteFile(filepath.Join(f.state, fmt.Sprintf("%s.%d", unit, i+1)), []byte(a), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func show(id, load, active, sub, result, typ, status, started string) string {
	return fmt.Sprintf("Id=%s\nLoadState=%s\nLoadError=\nActiveState=%s\nSubState=%s\nResult=%s\nType=%s\nExecMainStatus=%s\nExecMainStartTimestampMonotonic=%s\n",
		id, load, active, sub, result, typ, status, started)
}

func TestUnits(t *testing.T) {
	f := newFakeSystemctl(t)
	activating := show("slow.service", "loaded", "activating", "start", "success", "notify", "0", "5000")
	f.unit(t, "sshd.service", show("sshd.service", "loaded", "active", "running", "success", "notify", "0", "1234"))
	f.unit(t, "sshd", show("sshd.service", "loaded", "active", "running", "success", "notify", "0", "1234"))
	f.unit(t, "-.mount", "Id=-.mount\nLoadState=loaded\nActiveState=active\nSubState=mounted\nResult=success\nType=ext4\n")
	f.unit(t, "once-remain.service", show("once-remain.service", "loaded", "active", "exited", "success", "oneshot", "0", "999"))
	f.unit(t, "once-ok.service", show("once-ok.service", "loaded", "inactive", "dead", "success", "oneshot", "0", "999"))
	f.unit(t, "once-never.service", show("once-never.service", "loaded", "inactive", "dead", "success", "oneshot", "0", "0"))
	f.unit(t, "once-bad.service", show("once-bad.service", "loaded", "failed", "failed", "exit-code", "oneshot", "4", "999"))
	f.unit(t, "stopped.service", show("stopped.service", "loaded", "inactive", "dead", "success", "simple", "0", "999"))
	f.unit(t, "masked.service", "Id=masked.service\nLoadState=masked\nActiveState=inactive\nSubState=dead\n")
	f.unit(t, "broken.service", "Id=broken.service\nLoadState=bad-setting\nLoadError=org.freedesktop.systemd1.BadUnitSetting \"Unit broken.service has a bad unit file setting.\"\nActiveState=inactive\nSubState=dead\n")
	f.unit(t, "slow.service", activating, activating, activating, show("slow.service", "loaded", "active", "running", "success", "notify", "0", "5000"))
	f.unit(t, "wobbly.service", show("wobbly.service", "loaded", "failed", "failed", "exit-code", "simple", "1", "42"))
	if err := os.WriteFile(filepath.Join(f.state, "nobus.service.fail"), []byte("Failed to connect to bus: No such file or directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	r, err := Run(context.Background(), Config{
		RequiredDir: filepath.Join(root, "none"), WantedDir: filepath.Join(root, "none"),
		RequiredUnits: []string{"sshd.service", "sshd", "-.mount", "once-remain.service", "once-ok.service", "slow.service",
			"once-never.service", "once-bad.service", "stopped.service", "masked.service", "broken.service", "gone.service", "nobus.service"},
		WantedUnits: []string{"wobbly.service"},
		Systemctl:   f.path,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // name -> Err ("" = healthy)
		"unit:sshd.service":        "",
		"unit:sshd":                "",
		"unit:-.mount":             "",
		"unit:once-remain.service": "",
		"unit:once-ok.service":     "",
		"unit:slow.service":        "",
		"unit:once-never.service":  "oneshot unit has not run",
		"unit:once-bad.service":    "unit is failed (result: exit-code)",
		"unit:stopped.service":     "unit is inactive",
		"unit:masked.service":      "unit is masked",
		"unit:broken.service":      `unit could not be loaded (bad-setting): org.freedesktop.systemd1.BadUnitSetting "Unit broken.service has a bad unit file setting."`,
		"unit:gone.service":        "unit not found",
		"unit:nobus.service":       "systemctl show nobus.service: exit status 1: Failed to connect to bus: No such file or directory",
		"unit:wobbly.service":      "unit is failed (result: exit-code)",
	}
	if len(r.Checks) != len(want) {
		t.Fatalf("%d checks, want %d: %v", len(r.Checks), len(want), names(r.Checks))
	}
	for _, c := range r.Checks {
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected check %s", c.Name)
			continue
		}
		if c.Err != w || c.OK != (w == "") {
			t.Errorf("%s: OK=%v Err=%q, want Err=%q", c.Name, c.OK, c.Err, w)
		}
		if c.Required != (c.Name != "unit:wobbly.service") {
			t.Errorf("%s: Required=%v", c.Name, c.Required)
		}
	}
	if s := find(t, r, "unit:sshd.service").Output; !strings.Contains(s, "ActiveState=active\n") {
		t.Errorf("unit output %q", s)
	}
	if r.OK {
		t.Error("report OK with failed required units")
	}
	// slow.service was asked about until it was active.
	if b, _ := os.ReadFile(filepath.Join(f.state, "slow.service.count")); strings.TrimSpace(string(b)) != "4" {
		t.Errorf("slow.service asked %s times, want 4", b)
	}
	calls, _ := os.ReadFile(filepath.Join(f.state, "calls"))
	if !strings.Contains(string(calls), "show --property="+unitProperties+" -- -.mount\n") {
		t.Errorf("systemctl calls:\n%s", calls)
	}
	if got := r.Summary(); !strings.HasPrefix(got, "7 checks failed: unit:once-never.service (oneshot unit has not run), unit:once-bad.service (unit is failed (result: exit-code)), ") ||
		!strings.HasSuffix(got, "; 1 wanted check failed: unit:wobbly.service (unit is failed (result: exit-code))") {
		t.Errorf("Summary %q", got)
	}
}

func TestUnitStillActivating(t *testing.T) {
	f := newFakeSystemctl(t)
	f.unit(t, "loop.service", show("loop.service", "loaded", "activating", "auto-restart", "exit-code", "simple", "1", "77"))
	root := t.TempDir()
	r, err := Run(context.Background(), Config{
		RequiredDir: filepath.Join(root, "none"), WantedDir: filepath.Join(root, "none"),
		RequiredUnits: []string{"loop.service"}, Systemctl: f.path, Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := find(t, r, "unit:loop.service")
	if c.OK || c.Err != "unit is still activating (auto-restart) after 1s" || c.Duration < time.Second {
		t.Errorf("%+v", c)
	}
}

func TestUnitsWithoutSystemctl(t *testing.T) {
	root := t.TempDir()
	r, err := Run(context.Background(), Config{
		RequiredDir: filepath.Join(root, "none"), WantedDir: filepath.Join(root, "none"),
		RequiredUnits: []string{"sshd.service"}, Systemctl: filepath.Join(root, "no-systemctl"),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := find(t, r, "unit:sshd.service")
	if c.OK || !strings.Contains(c.Err, "no-systemctl") {
		t.Errorf("%+v", c)
	}
}

// TestRealSystemctl asks this machine's systemctl. Under a running systemd
// the root mount is active and a made-up unit is not found; without one
// (a container) systemctl fails and says why — a failed check either way
// for the made-up unit, with systemd's own words.
func TestRealSystemctl(t *testing.T) {
	sc, err := exec.LookPath("systemctl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemctl not installed (CI=true)")
		}
		t.Skip("systemctl not installed")
	}
	root := t.TempDir()
	r, err := Run(context.Background(), Config{
		RequiredDir: filepath.Join(root, "none"), WantedDir: filepath.Join(root, "none"),
		RequiredUnits: []string{"-.mount", "gostree-no-such-unit.service"}, Systemctl: sc,
	})
	if err != nil {
		t.Fatal(err)
	}
	rootMount, made := find(t, r, "unit:-.mount"), find(t, r, "unit:gostree-no-such-unit.service")
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Log("systemd is running")
		if !rootMount.OK || made.OK || made.Err != "unit not found" {
			t.Errorf("-.mount %+v; made-up unit %+v", rootMount, made)
		}
	} else {
		t.Logf("systemd is not running: %s", made.Err)
		if rootMount.OK || made.OK || !strings.HasPrefix(made.Err, "systemctl show gostree-no-such-unit.service: exit status") {
			t.Errorf("-.mount %+v; made-up unit %+v", rootMount, made)
		}
	}
}

func TestVerdict(t *testing.T) {
	cases := []struct {
		st      UnitStatus
		ok, set bool
	}{
		{UnitStatus{Id: "a.service", LoadState: "loaded", ActiveState: "reloading"}, true, true},
		{UnitStatus{Id: "a.service", LoadState: "loaded", ActiveState: "deactivating"}, false, false},
		{UnitStatus{Id: "a.timer", LoadState: "loaded", ActiveState: "inactive", Type: "oneshot"}, false, true},
		{UnitStatus{Id: "a.service", LoadState: "loaded", ActiveState: "inactive", Type: "oneshot", ExecMainStarted: true, Result: "success", ExecMainStatus: "1"}, false, true},
		{UnitStatus{Id: "a.service", LoadState: "loaded", ActiveState: "weird"}, false, true},
		{UnitStatus{Id: "a.service", LoadState: "error"}, false, true},
	}
	for _, c := range cases {
		ok, set, why := c.st.Verdict()
		if ok != c.ok || set != c.set || ok != (why == "") {
			t.Errorf("%+v: %v %v %q", c.st, ok, set, why)
		}
	}
}

func TestShowUnitCancelled(t *testing.T) {
	f := newFakeSystemctl(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := ShowUnit(ctx, f.path, "x.service")
	if err == nil {
		t.Errorf("cancelled ShowUnit: %v", err)
	}
	if _, _, err := ShowUnit(context.Background(), f.path, "bad unit"); err == nil {
		t.Error("bad unit name accepted")
	}
	st, _, err := ShowUnit(context.Background(), f.path, "y.service")
	if err != nil || !reflect.DeepEqual(st, UnitStatus{Id: "y.service", LoadState: "not-found", ActiveState: "inactive", SubState: "dead", Result: "success"}) {
		t.Errorf("%+v %v", st, err)
	}
}
