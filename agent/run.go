package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/internal/sdnotify"
	"github.com/gostree/gostree/ostree"
)

// Run is the daemon loop: Step, wait, repeat until ctx ends. wake, when it
// receives, cuts a wait short (SIGUSR1, `gostree-agent apply`). Run tells
// systemd it is ready before the first step, and keeps its watchdog fed
// from this loop, so a hung step is noticed.
//
// Ready comes first because a step can take long: a pull, or, after the
// reboot into a new deployment, the wait for this boot's health report.
// gostree-healthcheck.service, which writes that report, is ordered after
// multi-user.target, and multi-user.target waits for this Type=notify
// unit to be ready: were Ready sent after the first step, the agent would
// wait for a report that cannot come until systemd kills it at its start
// timeout (seen in the VM test, e2e/vm-agent-e2e.sh).
func (a *Agent) Run(ctx context.Context, wake <-chan struct{}) error {
	a.startup(ctx)
	sdnotify.Ready()
	for {
		wait, err := a.Step(ctx)
		if err != nil {
			a.log.WithError(err).Error("step failed")
			wait = a.backoff(2)
		}
		if ctx.Err() != nil {
			sdnotify.Stopping()
			return nil
		}
		sdnotify.Status(a.statusLine())
		if wait <= 0 {
			wait = time.Second
		}
		if !a.waitFor(ctx, wait, wake) {
			sdnotify.Stopping()
			return nil
		}
	}
}

// waitFor waits d (or until woken), feeding the watchdog; false when ctx
// ended.
func (a *Agent) waitFor(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	tick := time.Duration(0)
	if wi, ok := sdnotify.WatchdogInterval(); ok {
		tick = wi / 2
	}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		step := left
		if tick > 0 && tick < step {
			step = tick
		}
		t := time.NewTimer(step)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-wake:
			t.Stop()
			return true
		case <-t.C:
		}
		if tick > 0 {
			sdnotify.Watchdog()
		}
	}
}

// startup runs once when the daemon starts: with nothing pending, give
// back a FleetLock slot this node may still hold (as Zincati does), so a
// node that rebooted into its update and lost its state does not keep the
// fleet locked.
func (a *Agent) startup(ctx context.Context) {
	a.mu.Lock()
	idle := a.st.Job == nil
	a.mu.Unlock()
	if !idle {
		return
	}
	p, err := a.cfg.RebootPolicy()
	if err != nil || p.Mode != heatmeta.RebootFleetLock {
		return
	}
	g, err := a.o.NewGate(p)
	if err != nil {
		return
	}
	if err := g.Release(ctx); err != nil {
		a.log.WithError(err).Warn("fleet lock: releasing at start-up failed")
	}
}

func (a *Agent) statusLine() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if j := a.st.Job; j != nil {
		s := fmt.Sprintf("%s %s", j.Phase, j.Desired.Commit.Short())
		if j.RebootWait != "" {
			s += ": " + j.RebootWait
		}
		if j.LastError != "" {
			s += " (retrying: " + j.LastError + ")"
		}
		return s
	}
	return "idle"
}

// applyRequestPath is where `gostree-agent apply` leaves its request.
func applyRequestPath(dir string) string { return filepath.Join(dir, "apply-request") }

// RequestApply records that the operator wants the staged deployment
// applied now (the manual reboot policy). commit, if not zero, must be the
// job's target.
func RequestApply(cfg *Config, commit ostree.Checksum) error {
	st, err := LoadState(cfg.StateDir)
	if err != nil {
		return err
	}
	if st.Job == nil {
		return errors.New("nothing to apply: no update is pending")
	}
	if !commit.IsZero() && commit != st.Job.Desired.Commit {
		return fmt.Errorf("the pending update is %s, not %s", st.Job.Desired.Commit, commit)
	}
	return atomicfile.WriteFile(applyRequestPath(cfg.StateDir), []byte(st.Job.Desired.Commit.String()+"\n"), 0o600)
}

// takeApplyRequest marks the job for reboot if an apply request names it.
func (a *Agent) takeApplyRequest(job *Job) {
	p := applyRequestPath(a.cfg.StateDir)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		return
	}
	os.Remove(p)
	if strings.TrimSpace(string(b)) == job.Desired.Commit.String() {
		a.mu.Lock()
		job.ApplyRequested = true
		a.mu.Unlock()
		a.note(job, "apply requested by an operator")
	}
}

// Plan is what the agent would do now (gostree-agent check).
type Plan struct {
	Running ostree.Checksum `json:"running,omitzero"`
	// Request is the chosen request key and Target its commit.
	Request string            `json:"request,omitempty"`
	Target  *heatmeta.Desired `json:"target,omitempty"`
	// Action: "none", "deploy", "continue" (a job is in progress),
	// "report" (an answer without deploying), "refuse".
	Action string `json:"action"`
	Reason string `json:"reason"`
	Source string `json:"source,omitempty"`
	// Errors are metadata problems.
	Errors []string `json:"errors,omitempty"`
}

// Check polls metadata and says what the agent would do, changing nothing
// (the metadata cache's latest copies are refreshed, as any poll does).
func (a *Agent) Check(ctx context.Context) (*Plan, error) {
	a.stepMu.Lock()
	defer a.stepMu.Unlock()
	p := &Plan{Action: "none"}
	coll, err := a.collector.Collect(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range coll.Errors {
		p.Errors = append(p.Errors, e.Error())
	}
	w, err := coll.Wanted()
	if err != nil {
		return nil, err
	}
	for _, r := range w.Deployments {
		if r.Err != nil {
			p.Errors = append(p.Errors, r.Err.Error())
		}
	}
	if w.KeyErr != nil {
		p.Errors = append(p.Errors, w.KeyErr.Error())
	}
	sys, err := a.openSysroot(ctx)
	if err != nil {
		return nil, err
	}
	if cur := a.current(sys); cur != nil {
		p.Running = cur.Checksum
	}
	sys.Close()
	st := a.State()
	tgt, _ := pickTarget(w, func(k string) bool { return st.handled(k) != nil })
	if tgt == nil {
		p.Reason = "metadata asks for no commit"
		if st.Job != nil {
			p.Action, p.Reason = "continue", fmt.Sprintf("job %s is in phase %s", st.Job.Key, st.Job.Phase)
		}
		return p, nil
	}
	shown := *tgt.d
	shown.Signal = heatmeta.SignalTarget{Transport: shown.Signal.Transport} // no URLs or passwords
	p.Request, p.Target = tgt.key, &shown
	switch {
	case st.Job != nil && st.Job.Key == tgt.key:
		p.Action, p.Reason = "continue", fmt.Sprintf("already working on it (phase %s)", st.Job.Phase)
	case st.Job != nil && !preemptible(st.Job.Phase):
		p.Action, p.Reason = "continue", fmt.Sprintf("job %s must finish first (phase %s)", st.Job.Key, st.Job.Phase)
	case st.handled(tgt.key) != nil:
		h := st.handled(tgt.key)
		p.Reason = "already handled: " + h.Reason
	case st.Blocked != nil && st.Blocked.Commit == tgt.d.Commit:
		p.Action, p.Reason = "refuse", "commit is blocked: "+st.Blocked.Reason
	case p.Running == tgt.d.Commit:
		p.Action, p.Reason = "report", "the commit is already running"
	default:
		p.Action = "deploy"
		src, err := a.o.Resolver.Resolve(ctx, tgt.d)
		if err != nil {
			p.Action, p.Reason = "refuse", err.Error()
			if !isPermanent(err) {
				p.Action = "deploy"
				p.Reason = "source unavailable now (would retry): " + err.Error()
			}
			return p, nil
		}
		p.Source = src.Desc
		pol, err := a.policy(&Job{Desired: *tgt.d})
		if err != nil {
			return nil, err
		}
		mode := string(pol.Mode)
		if mode == "" {
			mode = "immediate"
		}
		p.Reason = fmt.Sprintf("would pull %s from %s, stage it and reboot (policy %s)", tgt.d.Commit, src.Desc, mode)
	}
	return p, nil
}

// MarshalJSON-friendly status.

// Status is what `gostree-agent status` shows.
type Status struct {
	State
	Config []string `json:"config_files,omitempty"`
}

// LoadStatus reads the state of an agent from its state directory (for
// status without a running daemon in this process).
func LoadStatus(cfg *Config) (*Status, error) {
	st, err := LoadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	return &Status{State: *st, Config: cfg.Files}, nil
}

// RedactedJSON returns the status as JSON with signal secrets removed.
func (s *Status) RedactedJSON() ([]byte, error) {
	c := *s
	if c.Job != nil {
		j := *c.Job
		j.Desired.Signal = heatmeta.SignalTarget{Transport: j.Desired.Signal.Transport}
		c.Job = &j
	}
	return json.MarshalIndent(c, "", "  ")
}
