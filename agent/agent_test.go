package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/sign"
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

func TestHealthCheckFailureRollsBack(t *testing.T) {
	e := newEnv(t)
	e.setHealth(false)
	e.setMetadata("dep-3", "os_image", inputsFor(e.commits[3]))
	a := e.steps(e.agent(), 20, false)
	if st := a.State(); st.Job != nil {
		t.Fatalf("job not finished: %+v", st.Job)
	}
	if e.booted() != e.commits[1] || e.defaultCommit() != e.commits[1] {
		t.Fatalf("after rollback booted %s default %s, want v1", e.booted().Short(), e.defaultCommit().Short())
	}
	sig := lastSignal(t, e, "os_image")
	if sig["deploy_status_code"] == float64(0) || !strings.Contains(sig["deploy_stderr"].(string), "health check failed: ") ||
		!strings.Contains(sig["deploy_stderr"].(string), "required.d/10-app") {
		t.Fatalf("signal: %v", sig)
	}
	if sig["booted_commit"] != e.commits[1].String() {
		t.Fatalf("booted_commit %v, want v1", sig["booted_commit"])
	}
	st := a.State()
	if st.Blocked == nil || st.Blocked.Commit != e.commits[3] {
		t.Fatalf("v3 not blocked: %+v", st.Blocked)
	}
	// the same target under a new deployment id is not retried
	e.setMetadata("dep-3b", "os_image_b", inputsFor(e.commits[3]))
	e.setHealth(true)
	a = e.steps(a, 5, false)
	if e.booted() != e.commits[1] {
		t.Fatal("a rolled-back commit was retried")
	}
	sig = lastSignal(t, e, "os_image_b")
	if sig["deploy_status_code"] == float64(0) || !strings.Contains(sig["deploy_stderr"].(string), "not tried again") {
		t.Fatalf("signal for the blocked retry: %v", sig)
	}
	// naming another commit clears the block and works
	e.setMetadata("dep-2", "os_image_c", inputsFor(e.commits[2]))
	e.steps(a, 20, false)
	if e.booted() != e.commits[2] {
		t.Fatalf("booted %s, want v2", e.booted().Short())
	}
}

func TestBootCounterFallbackReported(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	e.fallback = true
	e.setMetadata("dep-2", "os_image", inputsFor(e.commits[2]))
	a := e.steps(e.agent(), 20, false)
	if a.State().Job != nil {
		t.Fatal("job not finished")
	}
	if e.booted() != e.commits[1] || e.defaultCommit() != e.commits[1] {
		t.Fatalf("booted %s default %s, want v1", e.booted().Short(), e.defaultCommit().Short())
	}
	sig := lastSignal(t, e, "os_image")
	if sig["deploy_status_code"] == float64(0) || !strings.Contains(sig["deploy_stderr"].(string), "did not boot") {
		t.Fatalf("signal: %v", sig)
	}
}

func TestBadSignatureNeverDeployed(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	s := e.open()
	other, _ := sign.Ed25519KeyFromSeed([]byte("another key, not the publisher's"))
	cfg := s.Repo().Config()
	cfg.Set(`remote "gostree"`, "verification-ed25519-key", other.Public().String())
	if err := s.Repo().WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	s.Close()
	e.setMetadata("dep-2", "os_image", inputsFor(e.commits[2]))
	a := e.steps(e.agent(), 10, false)
	if a.State().Job != nil {
		t.Fatal("job not finished")
	}
	if e.defaultCommit() != e.commits[1] {
		t.Fatal("default deployment changed after a bad signature")
	}
	s = e.open()
	defer s.Close()
	if s.Staged() != nil || len(s.Deployments) != 1 {
		t.Fatalf("deployments changed after a bad signature: %d", len(s.Deployments))
	}
	if _, err := s.Repo().ReadRef(ostree.Refspec{Remote: "gostree", Ref: "os/stable"}); err == nil {
		t.Fatal("a ref points at the unverified commit")
	}
	sig := lastSignal(t, e, "os_image")
	if sig["deploy_status_code"] == float64(0) || !strings.Contains(strings.ToLower(sig["deploy_stderr"].(string)), "signature") {
		t.Fatalf("signal: %v", sig)
	}
}

func TestInvalidMetadata(t *testing.T) {
	e := newEnv(t)
	// a deployment without ostree_commit
	e.setMetadata("dep-x", "os_image", map[string]any{"ostree_ref": "os/stable"})
	a := e.steps(e.agent(), 3, false)
	sig := lastSignal(t, e, "os_image")
	if sig["deploy_status_code"] == float64(0) || !strings.Contains(sig["deploy_stderr"].(string), "ostree_commit") {
		t.Fatalf("signal: %v", sig)
	}
	// malformed JSON: logged, nothing changes, polling goes on
	if err := os.WriteFile(filepath.Join(e.meta, "heat.json"), []byte(`{"deployments": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	a = e.steps(a, 3, false)
	st := a.State()
	if st.Job != nil || st.LastPollError == "" {
		t.Fatalf("malformed metadata: job %+v, poll error %q", st.Job, st.LastPollError)
	}
	if e.booted() != e.commits[1] {
		t.Fatal("deployment changed")
	}
}

func TestDowngradeNeedsAllow(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	e.setMetadata("dep-0", "os_image", inputsFor(e.commits[0]))
	a := e.steps(e.agent(), 10, false)
	sig := lastSignal(t, e, "os_image")
	if sig["deploy_status_code"] == float64(0) || !strings.Contains(sig["deploy_stderr"].(string), "downgrade refused") {
		t.Fatalf("signal: %v", sig)
	}
	in := inputsFor(e.commits[0])
	in["allow_downgrade"] = true
	e.setMetadata("dep-0b", "os_image_b", in)
	e.steps(a, 20, false)
	if e.booted() != e.commits[0] {
		t.Fatalf("allowed downgrade not done: booted %s", e.booted().Short())
	}
}

func TestRestartAtEveryStep(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	e.setMetadata("dep-2", "os_image", inputsFor(e.commits[2]))
	e.steps(nil, 30, true)
	if e.booted() != e.commits[2] {
		t.Fatalf("booted %s, want v2", e.booted().Short())
	}
	if sig := lastSignal(t, e, "os_image"); sig["deploy_status_code"] != float64(0) {
		t.Fatalf("signal: %v", sig)
	}
}

func TestManualPolicyWaitsForApply(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	in := inputsFor(e.commits[2])
	in["reboot_policy"] = "manual"
	e.setMetadata("dep-2", "os_image", in)
	a := e.steps(e.agent(), 6, false)
	st := a.State()
	if st.Job == nil || st.Job.Phase != PhaseReboot || !strings.Contains(st.Job.RebootWait, "apply") {
		t.Fatalf("manual policy: %+v", st.Job)
	}
	if e.reboots != 1 {
		t.Fatal("rebooted without apply")
	}
	// a new target before the reboot replaces the staged deployment
	in = inputsFor(e.commits[3])
	in["reboot_policy"] = "manual"
	e.setMetadata("dep-3", "os_image_3", in)
	a = e.steps(a, 4, false)
	s := e.open()
	staged := s.Staged()
	s.Close()
	if staged == nil || staged.Checksum != e.commits[3] {
		t.Fatalf("staged %v, want v3", staged)
	}
	if err := RequestApply(&e.cfg, e.commits[2]); err == nil {
		t.Fatal("apply of a commit that is not pending accepted")
	}
	if err := RequestApply(&e.cfg, ostree.Checksum{}); err != nil {
		t.Fatal(err)
	}
	e.steps(a, 10, false)
	if e.booted() != e.commits[3] {
		t.Fatalf("booted %s after apply, want v3", e.booted().Short())
	}
}

func TestSignalRetriedUntilHeatAnswers(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	e.signals.fail = 100
	e.setMetadata("dep-2", "os_image", inputsFor(e.commits[2]))
	a := e.steps(e.agent(), 8, false)
	st := a.State()
	if st.Job == nil || st.Job.Phase != PhaseReport || st.Job.LastError == "" {
		t.Fatalf("want the job waiting to report: %+v", st.Job)
	}
	if strings.Contains(st.Job.LastError, "s3cr3t") {
		t.Fatalf("signal secret in the error: %s", st.Job.LastError)
	}
	e.signals.mu.Lock()
	e.signals.fail = 0
	e.signals.mu.Unlock()
	// a restart in between loses nothing
	e.steps(nil, 5, true)
	if sig := lastSignal(t, e, "os_image"); sig["deploy_status_code"] != float64(0) {
		t.Fatalf("signal: %v", sig)
	}
}

func TestSourceDownRetriedWithBackoff(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	var down atomic.Bool
	down.Store(true)
	fs := http.FileServer(http.Dir(e.src))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()
	in := inputsFor(e.commits[2])
	in["ostree_repo_url"] = srv.URL
	e.setMetadata("dep-2", "os_image", in)
	a := e.agent()
	if _, err := a.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := a.State()
	if st.Job == nil || st.Job.Phase != PhasePull || st.Job.Attempts != 1 || !strings.Contains(st.Job.LastError, "503") ||
		!st.Job.NextTry.After(time.Now()) {
		t.Fatalf("after a failed pull: %+v", st.Job)
	}
	if len(e.signals.for_("os_image")) != 0 {
		t.Fatal("a transient failure was signalled")
	}
	// a second failure doubles the backoff (within jitter bounds)
	first := st.Job.NextTry.Sub(time.Now())
	e.steps(a, 2, false) // the first step only waits out the backoff
	if st = a.State(); st.Job == nil || st.Job.Attempts != 2 {
		t.Fatalf("second attempt: %+v", st.Job)
	}
	if first > e.cfg.PollInterval {
		t.Fatalf("first backoff %s above the poll interval", first)
	}
	// the source comes back: a restarted agent finishes the job
	down.Store(false)
	e.steps(nil, 20, true)
	if e.booted() != e.commits[2] {
		t.Fatalf("booted %s, want v2", e.booted().Short())
	}
}

// rewind rewrites the saved job's phase, as if the agent had crashed after
// doing a phase's work but before recording it.
func rewind(t *testing.T, e *env, p Phase) {
	t.Helper()
	st, err := LoadState(e.cfg.StateDir)
	if err != nil || st.Job == nil {
		t.Fatalf("no job to rewind: %v", err)
	}
	st.Job.Phase = p
	if err := SaveState(e.cfg.StateDir, st); err != nil {
		t.Fatal(err)
	}
}

func TestCrashBeforeRecordingAPhase(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	in := inputsFor(e.commits[2])
	in["reboot_policy"] = "manual"
	e.setMetadata("dep-2", "os_image", in)
	e.steps(e.agent(), 6, false) // staged, waiting for apply
	// crashed after Deploy, before "stage" was recorded as done
	rewind(t, e, PhaseStage)
	a := e.steps(nil, 3, true)
	s := e.open()
	n := len(s.Deployments)
	staged := s.Staged()
	s.Close()
	if n != 2 || staged == nil || staged.Serial != 0 {
		t.Fatalf("after the crash: %d deployments, staged %+v (a second deployment was made?)", n, staged)
	}
	if err := RequestApply(&e.cfg, e.commits[2]); err != nil {
		t.Fatal(err)
	}
	// crashed after the reboot, before "rebooting" was recorded
	a = e.steps(a, 1, false)
	rewind(t, e, PhaseReboot)
	before := e.reboots
	e.steps(nil, 10, true)
	if e.reboots != before {
		t.Fatal("rebooted again into a commit that was already running")
	}
	if e.booted() != e.commits[2] {
		t.Fatal("not in v2")
	}
	if sig := lastSignal(t, e, "os_image"); sig["deploy_status_code"] != float64(0) {
		t.Fatalf("signal: %v", sig)
	}
}

func TestSupersededWhileRebootingIsNotSignalled(t *testing.T) {
	e := newEnv(t)
	e.setHealth(true)
	e.setMetadata("dep-2", "os_image", inputsFor(e.commits[2]))
	a := e.agent()
	if _, err := a.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := a.State(); st.Job == nil || st.Job.Phase != PhaseRebooting {
		t.Fatalf("want the job rebooting: %+v", st.Job)
	}
	// stack update while the node reboots: same resource, same signal URL
	e.setMetadata("dep-3", "os_image", inputsFor(e.commits[3]))
	a = e.steps(a, 20, false) // dep-2 ends (unsignalled)
	e.steps(a, 20, false)     // dep-3
	got := e.signals.for_("os_image")
	if len(got) != 1 || got[0]["booted_commit"] != e.commits[3].String() {
		t.Fatalf("signals %v: want only v3's", got)
	}
	if e.booted() != e.commits[3] {
		t.Fatalf("booted %s, want v3", e.booted().Short())
	}
}

func TestHeatRollbackDeploymentAnsweredAtOnce(t *testing.T) {
	e := newEnv(t)
	e.setHealth(false)
	e.setMetadata("dep-3", "os_image", inputsFor(e.commits[3]))
	a := e.steps(e.agent(), 20, false)
	if sig := lastSignal(t, e, "os_image"); sig["deploy_status_code"] == float64(0) {
		t.Fatal("v3 did not fail")
	}
	// Heat's rollback: the failed deployment plus a new one with the
	// previous inputs (the commit running now).
	doc := fmt.Sprintf(`{"deployments": [
	  {"id": "dep-3", "name": "os_image", "group": "ostree", "inputs": [{"name": "ostree_commit", "value": %q},
	    {"name": "deploy_signal_id", "value": %q}, {"name": "deploy_signal_verb", "value": "PUT"}]},
	  {"id": "dep-1r", "name": "os_image", "group": "ostree", "inputs": [{"name": "ostree_commit", "value": %q},
	    {"name": "deploy_action", "value": "CREATE"},
	    {"name": "deploy_signal_id", "value": %q}, {"name": "deploy_signal_verb", "value": "PUT"}]}]}`,
		e.commits[3], e.signals.srv.URL+"/v1/AUTH_test/signals/old?temp_url_sig=x&temp_url_expires=1",
		e.commits[1], e.signals.srv.URL+"/v1/AUTH_test/signals/rollback?temp_url_sig=x&temp_url_expires=1")
	os.WriteFile(filepath.Join(e.meta, "heat.json"), []byte(doc), 0o600)
	before := e.reboots
	e.steps(a, 5, false)
	if sig := lastSignal(t, e, "rollback"); sig["deploy_status_code"] != float64(0) || sig["booted_commit"] != e.commits[1].String() {
		t.Fatalf("rollback deployment signal: %v", sig)
	}
	if len(e.signals.for_("old")) != 0 || e.reboots != before {
		t.Fatal("the failed deployment was signalled again or the node rebooted")
	}
}
