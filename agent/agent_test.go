package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gostree/gostree/ostree"
)

func inputsFor(c ostree.Checksum) map[string]any {
	return map[string]any{"ostree_commit": c.String(), "ostree_ref": "os/stable"}
}

func lastSignal(t *testing.T, e *env, name string) map[string]any {
	t.Helper()
	got := e.signals.for_(name)
	if len(got) != 1 {
		t.Fatalf("signals for %s: got %d, want 1: %v", name, len(got), got)
	}
	return got[0]
}

func TestUpdateRebootVerifySignal(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	// an /etc edit and a /var file made under v1 must survive
	s := e.open()
	v1path := s.DeploymentPath(s.Booted())
	s.Close()
	if err := os.WriteFile(filepath.Join(v1path, "etc/app.conf"), []byte("setting=local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.setMetadata("dep-1", "os_image", inputsFor(e.commits[2]))
	a := e.steps(e.agent(), 20, false)
	if st := a.State(); st.Job != nil {
		t.Fatalf("job not finished: %+v", st.Job)
	}
	if got := e.booted(); got != e.commits[2] {
		t.Fatalf("booted %s, want v2 %s", got, e.commits[2])
	}
	sig := lastSignal(t, e, "os_image")
	if sig["deploy_status_code"] != float64(0) {
		t.Fatalf("signal: %v", sig)
	}
	if sig["booted_commit"] != e.commits[2].String() || sig["previous_commit"] != e.commits[1].String() {
		t.Fatalf("signal outputs: %v", sig)
	}
	if !strings.Contains(sig["deploy_stdout"].(string), "health check required.d/10-app: ok") {
		t.Fatalf("deploy_stdout: %q", sig["deploy_stdout"])
	}
	s = e.open()
	v2path := s.DeploymentPath(s.Booted())
	s.Close()
	b, err := os.ReadFile(filepath.Join(v2path, "etc/app.conf"))
	if err != nil || string(b) != "setting=local\n" {
		t.Fatalf("/etc edit not merged: %q %v", b, err)
	}
	// the state file is private
	fi, err := os.Stat(filepath.Join(e.cfg.StateDir, "state.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state.json: %v %v", fi.Mode(), err)
	}
	raw, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, "state.json"))
	st, err := ParseState(raw)
	if err != nil || st.Last == nil || !st.Last.OK {
		t.Fatalf("state: %+v %v", st, err)
	}
	// steady state: nothing more happens, no second signal
	e.steps(a, 3, false)
	if n := len(e.signals.for_("os_image")); n != 1 {
		t.Fatalf("%d signals after steady state", n)
	}
}
