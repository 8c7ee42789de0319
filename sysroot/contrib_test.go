package sysroot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContribUnitsVerify checks contrib/systemd with systemd-analyze
// verify (the gostree binary replaced by /bin/true, which exists).
func TestContribUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"gostree-finalize-staged.service", "gostree-finalize-staged.path"} {
		b, err := os.ReadFile(filepath.Join("..", "contrib", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".service") && !strings.Contains(string(b), "ExecStop=/usr/bin/gostree admin finalize-staged") {
			t.Errorf("%s does not run gostree admin finalize-staged at stop", name)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/bin/gostree", "/bin/true")), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command(sa, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "gostree-finalize-staged") {
			t.Errorf("systemd-analyze: %s", l)
		}
	}
}
