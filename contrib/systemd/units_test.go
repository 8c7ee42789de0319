package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostUnitDir is where Debian's systemd package keeps its units.
const hostUnitDir = "/usr/lib/systemd/system"

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed (CI=true; scripts/deps.sh installs the systemd package)", tool)
			}
			t.Skipf("%s not installed (Debian package systemd)", tool)
		}
	}
	if _, err := os.Stat(filepath.Join(hostUnitDir, "boot-complete.target")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// ourUnits lists the unit files of this directory.
func ourUnits(t *testing.T) []string {
	t.Helper()
	var units []string
	for _, pat := range []string{"*.service", "*.path", "*.target", "*.timer", "*.socket"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		units = append(units, m...)
	}
	slices.Sort(units)
	if len(units) == 0 {
		t.Fatal("no unit files")
	}
	return units
}

// scratchRoot builds a root holding the host's systemd units, ours (as a
// package installs them) and the binaries our units start. The binaries
// are placeholders: systemd-analyze verify only checks that an ExecStart=
// path is an executable file, and the units are started for real in the
// VM test (issue 7).
func scratchRoot(t *testing.T, edit func(name string, text string) string) string {
	t.Helper()
	root := t.TempDir()
	dst := filepath.Join(root, hostUnitDir)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", hostUnitDir, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", hostUnitDir, err, out)
	}
	for _, u := range ourUnits(t) {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if edit != nil {
			text = edit(u, text)
		}
		if err := os.WriteFile(filepath.Join(dst, u), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, bin := range []string{"usr/bin/gostree", "usr/bin/gostree-agent"} {
		p := filepath.Join(root, bin)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc/systemd/system", "bin", "usr/sbin"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	// Units of the host point at these (ExecStart=/bin/true, …).
	for _, tool := range []string{"/bin/true", "/bin/sh"} {
		if b, err := os.ReadFile(tool); err == nil {
			os.WriteFile(filepath.Join(root, tool), b, 0o755)
		}
	}
	return root
}

// run runs a command and returns its combined output and whether it
// exited 0.
func run(t *testing.T, name string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "SYSTEMD_LOG_COLOR=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err == nil
}

// verify runs systemd-analyze verify on our units and on the targets of a
// whole boot (which checks the dependency graph: ordering cycles, missing
// units) and returns everything it printed.
func verify(t *testing.T, root string) (string, bool) {
	t.Helper()
	args := []string{"verify", "--root=" + root}
	for _, u := range ourUnits(t) {
		args = append(args, filepath.Join(root, hostUnitDir, u))
	}
	args = append(args, "default.target", "multi-user.target", "boot-complete.target", "shutdown.target")
	return run(t, "systemd-analyze", args...)
}

func enable(t *testing.T, root string) {
	t.Helper()
	out, ok := run(t, "systemctl", "--root="+root, "enable", "gostree-agent.service", "gostree-finalize-staged.path")
	if !ok {
		t.Fatalf("systemctl enable: %s", out)
	}
}

func TestUnitsVerify(t *testing.T) {
	need(t, "systemd-analyze", "systemctl")
	root := scratchRoot(t, nil)
	enable(t, root)
	// Enabling the agent also enables the health check, in the target
	// that systemd's boot assessment waits for.
	for link, target := range map[string]string{
		"multi-user.target.wants/gostree-agent.service":             "gostree-agent.service",
		"boot-complete.target.requires/gostree-healthcheck.service": "gostree-healthcheck.service",
		"multi-user.target.wants/gostree-finalize-staged.path":      "gostree-finalize-staged.path",
	} {
		got, err := os.Readlink(filepath.Join(root, "etc/systemd/system", link))
		if err != nil || filepath.Base(got) != target {
			t.Errorf("after enable, %s -> %q (%v), want a link to %s", link, got, err, target)
		}
	}
	out, ok := verify(t, root)
	if !ok {
		t.Errorf("systemd-analyze verify failed:\n%s", out)
	}
	// Complaints about the host's own units (other packages installed
	// here) are not ours to fix; every complaint naming ours is.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case line == "":
		case strings.Contains(line, "gostree"):
			t.Errorf("systemd-analyze verify: %s", line)
		default:
			t.Logf("systemd-analyze verify (about the host's units): %s", line)
		}
	}
}

// The check above is only worth something if systemd-analyze complains
// about the mistakes it is meant to catch.
func TestUnitsVerifyCatchesMistakes(t *testing.T) {
	need(t, "systemd-analyze", "systemctl")
	cases := map[string]struct {
		unit, old, new, complaint string
	}{
		"unknown setting": {"gostree-agent.service", "Restart=on-failure", "Restart=on-failure\nRestartSteps=3x", "Unknown key"},
		"bad value":       {"gostree-agent.service", "WatchdogSec=3min", "WatchdogSec=3 fortnights", "Failed to parse"},
		// The agent waiting for the health check would deadlock the boot:
		// the check runs after multi-user.target, which waits for the agent.
		"ordering cycle": {"gostree-agent.service", "After=network-online.target", "After=network-online.target gostree-healthcheck.service", "ordering cycle"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			edited := false
			root := scratchRoot(t, func(u, text string) string {
				if u != c.unit {
					return text
				}
				edited = strings.Contains(text, c.old)
				return strings.Replace(text, c.old, c.new, 1)
			})
			if !edited {
				t.Fatalf("%s has no %q to change", c.unit, c.old)
			}
			enable(t, root)
			out, _ := verify(t, root)
			if !strings.Contains(out, c.complaint) {
				t.Errorf("systemd-analyze verify did not report %q:\n%s", c.complaint, out)
			}
		})
	}
}

// TestAgentSandbox asks systemd-analyze security how exposed the agent
// is: 3.7 ("OK") when written, so an accidental loss of the hardening
// (exposure above 5, "MEDIUM") fails here.
func TestAgentSandbox(t *testing.T) {
	need(t, "systemd-analyze")
	root := scratchRoot(t, nil)
	out, ok := run(t, "systemd-analyze", "security", "--offline=yes", "--root="+root, "--threshold=50", "--no-pager", "gostree-agent.service")
	if !ok {
		t.Errorf("systemd-analyze security --threshold=50 gostree-agent.service:\n%s", out)
	}
	if i := strings.Index(out, "Overall exposure level"); i >= 0 {
		t.Log(strings.TrimSpace(out[i:]))
	} else {
		t.Errorf("no exposure level in:\n%s", out)
	}
}

// unitFile is a parsed unit: section -> key -> values in order (systemd
// settings may repeat).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("%s:%d: unexpected line %q", path, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// words returns all space-separated values of a setting.
func (u unitFile) words(section, key string) []string {
	var out []string
	for _, v := range u[section][key] {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func (u unitFile) one(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1] // the last assignment wins
}

// TestUnitContract pins what gostree-agent and package agent/health rely
// on, beyond what systemd-analyze can know.
func TestUnitContract(t *testing.T) {
	agent := parseUnit(t, "gostree-agent.service")
	for key, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "main", "ExecStart": "/usr/bin/gostree-agent run",
		"Restart": "on-failure", "WatchdogSec": "3min", "StateDirectory": "gostree-agent",
		"RuntimeDirectory": "gostree-agent", "RuntimeDirectoryPreserve": "yes", "ProtectSystem": "strict",
	} {
		if got := agent.one("Service", key); got != want {
			t.Errorf("gostree-agent.service: %s=%q, want %q", key, got, want)
		}
	}
	rw := agent.words("Service", "ReadWritePaths")
	for _, p := range []string{"-/sysroot", "-/ostree", "-/boot", "-/etc/gostree", "-/run/ostree"} {
		if !slices.Contains(rw, p) {
			t.Errorf("gostree-agent.service: ReadWritePaths %v lacks %s", rw, p)
		}
	}
	if caps := agent.words("Service", "CapabilityBoundingSet"); !slices.Contains(caps, "CAP_LINUX_IMMUTABLE") || !slices.Contains(caps, "CAP_SETFCAP") {
		t.Errorf("gostree-agent.service: CapabilityBoundingSet %v cannot write deployments", caps)
	}
	for _, forbidden := range []string{"RestrictSUIDSGID", "PrivateDevices", "User", "DynamicUser"} {
		if len(agent["Service"][forbidden]) > 0 {
			t.Errorf("gostree-agent.service sets %s, which breaks writing deployments", forbidden)
		}
	}
	if w := agent.words("Unit", "Wants"); !slices.Contains(w, "boot-complete.target") {
		t.Errorf("gostree-agent.service does not pull in boot-complete.target: Wants=%v", w)
	}
	if a := agent.words("Unit", "After"); slices.Contains(a, "gostree-healthcheck.service") {
		t.Error("gostree-agent.service is ordered after the health check: boot ordering cycle")
	}
	if got := agent.words("Install", "Also"); !slices.Contains(got, "gostree-healthcheck.service") {
		t.Errorf("gostree-agent.service: Also=%v", got)
	}

	hc := parseUnit(t, "gostree-healthcheck.service")
	for key, want := range map[string]string{
		"Type": "oneshot", "RemainAfterExit": "yes", "ExecStart": "/usr/bin/gostree-agent health-check",
		"RuntimeDirectory": "gostree-agent", "RuntimeDirectoryPreserve": "yes",
	} {
		if got := hc.one("Service", key); got != want {
			t.Errorf("gostree-healthcheck.service: %s=%q, want %q", key, got, want)
		}
	}
	if got := hc.words("Unit", "Before"); !slices.Contains(got, "boot-complete.target") {
		t.Errorf("gostree-healthcheck.service: Before=%v", got)
	}
	if got := hc.words("Unit", "After"); !slices.Contains(got, "multi-user.target") {
		t.Errorf("gostree-healthcheck.service: After=%v", got)
	}
	if got := hc.words("Install", "RequiredBy"); !slices.Equal(got, []string{"boot-complete.target"}) {
		t.Errorf("gostree-healthcheck.service: RequiredBy=%v", got)
	}
	if got := hc.words("Unit", "DefaultDependencies"); len(got) > 0 {
		t.Errorf("gostree-healthcheck.service: DefaultDependencies=%v", got)
	}
}
