// Package imagebuild tests contrib/image-build/install-agent.sh.
package imagebuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gostree/gostree/agent"
)

func TestInstallAgentIntoATree(t *testing.T) {
	if _, err := exec.LookPath("systemctl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemctl missing (scripts/deps.sh installs systemd)")
		}
		t.Skip("no systemctl")
	}
	bin := t.TempDir()
	for _, c := range []string{"gostree", "gostree-agent"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, c), "../../cmd/"+c).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", c, err, out)
		}
	}
	root := t.TempDir()
	for i := 0; i < 2; i++ { // idempotent
		out, err := exec.Command("bash", "install-agent.sh", root, bin).CombinedOutput()
		if err != nil {
			t.Fatalf("install-agent.sh: %v\n%s", err, out)
		}
	}
	for _, p := range []string{
		"usr/bin/gostree-agent", "usr/lib/systemd/system/gostree-agent.service",
		"etc/systemd/system/multi-user.target.wants/gostree-agent.service",
		"etc/systemd/system/boot-complete.target.requires/gostree-healthcheck.service",
		"etc/gostree/health/required.d",
	} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := agent.LoadConfig(filepath.Join(root, "etc/gostree/agent.yaml")); err != nil {
		t.Fatalf("the installed configuration does not load: %v", err)
	}
}
