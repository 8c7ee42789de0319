package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/gostree/gostree/agent/health"
	"github.com/gostree/gostree/agent/reboot"
	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/retry"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/sysroot"
)

// Options are the agent's collaborators. Only Config is required; the
// others default to the real thing and exist for tests and for the
// command's test hooks.
type Options struct {
	Config Config
	// Logger receives the agent's log (default: discarded).
	Logger logrus.FieldLogger
	// Sysroot are the sysroot's runtime paths (/run, / by default).
	Sysroot sysroot.Options
	// Resolver finds sources (default NewResolver).
	Resolver Resolver
	// NewGate builds the reboot gate for a policy (default reboot.New).
	NewGate func(p heatmeta.RebootPolicy) (reboot.Gate, error)
	// Rebooter reboots (default: Config.Reboot.Command or systemctl reboot).
	Rebooter reboot.Rebooter
	// Health runs the health checks (default health.Run with Config.Health).
	Health func(ctx context.Context, env []string) (health.Report, error)
	// Signaller reports to Heat (default: a Signaller with HTTPClient).
	Signaller *heatmeta.Signaller
	// HTTPClient is used by metadata sources and signals (default: 60 s
	// timeout, proxy from the environment).
	HTTPClient *http.Client
	// BootIDPath is read to tell boots apart (default
	// /proc/sys/kernel/random/boot_id).
	BootIDPath string
	// UtmpPath and DevDir are where logged-in users are found for the
	// reboot warning (default /run/utmp, /dev).
	UtmpPath, DevDir string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits (default: a timer honouring ctx).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Agent runs the state machine. Its methods are safe for concurrent use
// (Status and Metrics may be called while Step runs).
type Agent struct {
	o         Options
	cfg       *Config
	log       logrus.FieldLogger
	collector *heatmeta.Collector
	remote    *ostree.Remote
	metrics   *Metrics

	mu  sync.Mutex // guards st
	st  *State
	src map[string]*Source // resolved sources by job key (not persisted)

	stepMu sync.Mutex // one Step at a time
}

// New prepares an agent: creates the state directory (0700), opens the
// metadata cache and the sysroot's repository, and loads the state.
func New(o Options) (*Agent, error) {
	cfg := o.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		l := logrus.New()
		l.Out = discard{}
		o.Logger = l
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	if o.Signaller == nil {
		o.Signaller = &heatmeta.Signaller{HTTPClient: o.HTTPClient}
	}
	if o.BootIDPath == "" {
		o.BootIDPath = "/proc/sys/kernel/random/boot_id"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = retry.Sleep
	}
	if o.Rebooter == nil {
		argv := cfg.Reboot.Command
		if len(argv) == 0 {
			argv = []string{"systemctl", "reboot"}
		}
		o.Rebooter = reboot.CommandRebooter(argv...)
	}
	if o.Health == nil {
		hc := health.Config{
			RequiredDir: cfg.Health.RequiredDir, WantedDir: cfg.Health.WantedDir,
			RequiredUnits: cfg.Health.RequiredUnits, WantedUnits: cfg.Health.WantedUnits,
			Timeout: cfg.Health.Timeout, BootIDPath: o.BootIDPath,
		}
		o.Health = func(ctx context.Context, env []string) (health.Report, error) {
			c := hc
			c.Env = env
			return health.Run(ctx, c)
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := os.Chmod(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	sys, err := sysroot.Open(cfg.Sysroot, o.Sysroot)
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	var remote *ostree.Remote
	if cfg.Remote != "" {
		r := sys.Repo()
		if remote, err = r.Remote(r.DefaultRemotesDir(), cfg.Remote); err != nil {
			return nil, fmt.Errorf("config: remote: %w (add it with `gostree remote add` in the sysroot's repository)", err)
		}
	}
	if o.NewGate == nil {
		nodeID := cfg.Reboot.NodeID
		o.NewGate = func(p heatmeta.RebootPolicy) (reboot.Gate, error) {
			return reboot.New(p, reboot.Options{NodeID: nodeID, HTTPClient: o.HTTPClient})
		}
	}
	if o.Resolver == nil {
		o.Resolver = NewResolver(&cfg, remote)
	}
	cache, err := heatmeta.OpenCache(filepath.Join(cfg.StateDir, "metadata"))
	if err != nil {
		return nil, err
	}
	col, err := heatmeta.NewCollector(heatmeta.CollectorOptions{Config: cfg.Metadata, Cache: cache, HTTPClient: o.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	st, err := LoadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	a := &Agent{o: o, cfg: &cfg, log: o.Logger, collector: col, remote: remote, st: st,
		src: map[string]*Source{}, metrics: newMetrics()}
	return a, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Collector returns the metadata collector (for print-metadata).
func (a *Agent) Collector() *heatmeta.Collector { return a.collector }

// State returns a copy of the current state.
func (a *Agent) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := *a.st
	if s.Job != nil {
		j := *s.Job
		s.Job = &j
	}
	return s
}

// save persists the state; the caller holds no lock.
func (a *Agent) save() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return SaveState(a.cfg.StateDir, a.st)
}

func (a *Agent) jobLog(j *Job) logrus.FieldLogger {
	l := a.log.WithFields(logrus.Fields{"commit": j.Desired.Commit.Short(), "phase": string(j.Phase)})
	if j.Desired.DeploymentID != "" {
		l = l.WithField("deployment", j.Desired.DeploymentID)
	}
	return l
}

// note records a line in the job's log (sent to Heat as deploy_stdout)
// and logs it.
func (a *Agent) note(j *Job, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.jobLog(j).Info(msg)
	a.mu.Lock()
	j.Log = append(j.Log, a.o.Now().UTC().Format(time.RFC3339)+" "+msg)
	if len(j.Log) > 200 {
		j.Log = j.Log[len(j.Log)-200:]
	}
	a.mu.Unlock()
}

func (a *Agent) bootID() (string, error) {
	b, err := os.ReadFile(a.o.BootIDPath)
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// openSysroot opens and locks the sysroot and loads its deployments.
func (a *Agent) openSysroot(ctx context.Context) (*sysroot.Sysroot, error) {
	sys, err := sysroot.Open(a.cfg.Sysroot, a.o.Sysroot)
	if err != nil {
		return nil, err
	}
	if err := sys.Lock(); err != nil {
		sys.Close()
		return nil, err
	}
	if err := sys.Load(); err != nil {
		sys.Close()
		return nil, err
	}
	return sys, nil
}

// current returns the running deployment: the booted one, or on a
// sysroot that is not booted (an image being prepared), the default
// deployment of the stateroot.
func (a *Agent) current(sys *sysroot.Sysroot) *sysroot.Deployment {
	if b := sys.Booted(); b != nil {
		return b
	}
	for _, d := range sys.Deployments {
		if !d.Staged && (a.cfg.OSName == "" || d.OSName == a.cfg.OSName) {
			return d
		}
	}
	return nil
}

// target is what metadata asks for, with its request key.
type target struct {
	key string
	d   *heatmeta.Desired
}

func requestKey(d *heatmeta.Desired) string {
	if d.Origin == heatmeta.OriginDeployment {
		return "deployment:" + d.DeploymentID
	}
	return "metadata:" + d.Commit.String()
}

// pickTarget chooses the request to act on: the last valid ostree
// deployment not handled yet (else the last one), else the gostree
// metadata key. Unhandled valid deployments before it that ask for another
// commit conflict with it. Handled ones are skipped: after a failed update
// on a cloud with rollback enabled, Heat lists the failed deployment and a
// new one with the previous inputs, and the new one must win.
func pickTarget(w *heatmeta.Wanted, handled func(key string) bool) (*target, []*heatmeta.Desired) {
	if w == nil {
		return nil, nil
	}
	var valid, open []*heatmeta.Desired
	for _, r := range w.Deployments {
		if r.Err == nil && r.Desired != nil {
			valid = append(valid, r.Desired)
			if handled == nil || !handled(requestKey(r.Desired)) {
				open = append(open, r.Desired)
			}
		}
	}
	if len(open) > 0 {
		t := open[len(open)-1]
		var conflicts []*heatmeta.Desired
		for _, d := range open[:len(open)-1] {
			if d.Commit != t.Commit {
				conflicts = append(conflicts, d)
			}
		}
		return &target{key: requestKey(t), d: t}, conflicts
	}
	if len(valid) > 0 {
		t := valid[len(valid)-1]
		return &target{key: requestKey(t), d: t}, nil
	}
	if w.Key != nil {
		return &target{key: requestKey(w.Key), d: w.Key}, nil
	}
	return nil, nil
}

// current reports whether a job's request is still in the metadata: a
// deployment's signal URL is the same for every update of the resource,
// so signalling a superseded deployment would complete the current one
// with the wrong result.
func stillWanted(w *heatmeta.Wanted, job *Job) bool {
	if job.Desired.Origin != heatmeta.OriginDeployment {
		return true
	}
	for _, r := range w.Deployments {
		if r.Deployment.ID == job.Desired.DeploymentID {
			return true
		}
	}
	return false
}

// preemptible phases may be abandoned for a new target: nothing has been
// rebooted into yet.
func preemptible(p Phase) bool {
	switch p {
	case PhaseResolve, PhasePull, PhaseStage, PhaseReboot:
		return true
	}
	return false
}

// Step runs one pass: poll metadata, start or supersede a job, and move the
// job through as many phases as it can. It returns how long to wait before
// the next pass. Errors are already handled (logged, recorded, retried);
// the returned error is only for a state that cannot be written.
func (a *Agent) Step(ctx context.Context) (time.Duration, error) {
	a.stepMu.Lock()
	defer a.stepMu.Unlock()
	coll, wanted := a.poll(ctx)
	if wanted != nil {
		a.reportInvalid(ctx, wanted)
	}
	tgt, conflicts := pickTarget(wanted, a.isHandled)
	for _, c := range conflicts {
		a.finishRequest(ctx, requestKey(c), c, &Outcome{Reason: fmt.Sprintf(
			"conflicts with deployment %s, which asks for commit %s (one ostree deployment per server)", tgt.d.DeploymentName, tgt.d.Commit.Short())})
	}
	a.mu.Lock()
	job := a.st.Job
	a.mu.Unlock()
	if job != nil && tgt != nil && tgt.key != job.Key && preemptible(job.Phase) {
		a.note(job, "superseded by %s (commit %s) before reboot", tgt.key, tgt.d.Commit.Short())
		a.dropStaged(ctx, job)
		a.mu.Lock()
		a.st.addHandled(Handled{Key: job.Key, Commit: job.Desired.Commit, Reason: "superseded by " + tgt.key, Time: a.o.Now()})
		a.st.Job = nil
		delete(a.src, job.Key)
		a.mu.Unlock()
		job = nil
	}
	if job == nil && tgt != nil {
		if err := a.maybeStart(ctx, tgt); err != nil {
			a.log.WithError(err).Warn("cannot start")
			return a.backoff(1), a.save()
		}
	}
	a.mu.Lock()
	job = a.st.Job
	a.mu.Unlock()
	if job == nil {
		if coll != nil && coll.Changed() && (tgt == nil || a.isHandled(tgt.key)) {
			if err := a.collector.Commit(coll); err != nil {
				a.log.WithError(err).Warn("metadata cache")
			}
		}
		a.metrics.setPhase(PhaseIdle)
		return a.pollWait(), a.save()
	}
	wait := a.advance(ctx, job, wanted)
	a.mu.Lock()
	done := a.st.Job == nil
	a.mu.Unlock()
	if done && coll != nil && coll.Changed() {
		if err := a.collector.Commit(coll); err != nil {
			a.log.WithError(err).Warn("metadata cache")
		}
	}
	return wait, a.save()
}

func (a *Agent) isHandled(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.handled(key) != nil
}

// poll collects metadata and logs what went wrong; it never fails the step.
func (a *Agent) poll(ctx context.Context) (*heatmeta.Collection, *heatmeta.Wanted) {
	a.metrics.polls.Add(1)
	coll, err := a.collector.Collect(ctx)
	now := a.o.Now()
	a.mu.Lock()
	a.st.LastPoll = now
	a.st.LastPollError = ""
	a.mu.Unlock()
	if err != nil {
		a.metrics.pollErrors.Add(1)
		a.log.WithError(err).Warn("metadata poll failed")
		a.mu.Lock()
		a.st.LastPollError = err.Error()
		a.mu.Unlock()
		return nil, nil
	}
	var msgs []string
	for _, e := range coll.Errors {
		a.metrics.pollErrors.Add(1)
		a.log.WithError(e).Warn("metadata source failed; using its cached documents")
		msgs = append(msgs, e.Error())
	}
	if len(coll.Ignored) > 0 {
		a.log.WithField("ignored", coll.Ignored).Debug("os-collect-config settings in metadata not applied")
	}
	a.mu.Lock()
	a.st.LastPollError = strings.Join(msgs, "; ")
	a.mu.Unlock()
	w, err := coll.Wanted()
	if err != nil {
		a.log.WithError(err).Warn("metadata cannot be read")
		a.mu.Lock()
		a.st.LastPollError = err.Error()
		a.mu.Unlock()
		return coll, nil
	}
	for _, p := range w.Problems {
		a.log.WithError(p).Warn("metadata: unusable deployment item")
	}
	if w.KeyErr != nil {
		a.log.WithError(w.KeyErr).Warn("metadata: the gostree key is invalid")
	}
	return coll, w
}

// reportInvalid signals a failure, once, for each ostree deployment whose
// inputs are wrong.
func (a *Agent) reportInvalid(ctx context.Context, w *heatmeta.Wanted) {
	for _, r := range w.Deployments {
		if r.Err == nil {
			continue
		}
		key := "deployment:" + r.Deployment.ID
		if a.isHandled(key) {
			continue
		}
		a.log.WithError(r.Err).WithField("deployment", r.Deployment.ID).Error("invalid ostree deployment")
		d := &heatmeta.Desired{Origin: heatmeta.OriginDeployment, DeploymentID: r.Deployment.ID, DeploymentName: r.Deployment.Name, Signal: r.Signal}
		a.finishRequest(ctx, key, d, &Outcome{Reason: "invalid deployment: " + r.Err.Error()})
	}
}

// finishRequest reports the outcome of a request that needs no job
// (invalid, conflicting, already running, blocked) and records it.
func (a *Agent) finishRequest(ctx context.Context, key string, d *heatmeta.Desired, out *Outcome) {
	if a.isHandled(key) {
		return
	}
	if err := a.signal(ctx, d, out, nil); err != nil {
		a.log.WithError(err).WithField("request", key).Warn("signal failed")
		if heatmeta.IsRetryable(err) {
			return // not recorded: tried again at the next poll
		}
	}
	a.mu.Lock()
	a.st.addHandled(Handled{Key: key, Commit: d.Commit, OK: out.OK, Reason: out.Reason, Time: a.o.Now()})
	a.mu.Unlock()
	a.metrics.jobDone(out.OK)
}

// maybeStart starts a job for tgt unless it is done, running or blocked.
func (a *Agent) maybeStart(ctx context.Context, tgt *target) error {
	a.mu.Lock()
	blocked := a.st.Blocked
	if blocked != nil && blocked.Commit != tgt.d.Commit {
		a.st.Blocked = nil
		blocked = nil
	}
	a.mu.Unlock()
	if a.isHandled(tgt.key) {
		return nil
	}
	if blocked != nil {
		a.finishRequest(ctx, tgt.key, tgt.d, &Outcome{Reason: fmt.Sprintf(
			"commit %s is not tried again: %s (name another commit to retry)", tgt.d.Commit.Short(), blocked.Reason)})
		return nil
	}
	if strings.EqualFold(tgt.d.Action, "DELETE") || strings.EqualFold(tgt.d.Action, "SUSPEND") {
		a.finishRequest(ctx, tgt.key, tgt.d, &Outcome{OK: true, Reason: "nothing to do for " + tgt.d.Action})
		return nil
	}
	sys, err := a.openSysroot(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	cur := a.current(sys)
	var prev ostree.Checksum
	if cur != nil {
		prev = cur.Checksum
	}
	if cur != nil && cur.Checksum == tgt.d.Commit {
		a.finishRequest(ctx, tgt.key, tgt.d, &Outcome{OK: true, Reason: "commit " + tgt.d.Commit.String() + " is already running",
			Booted: prev, Previous: prev})
		return nil
	}
	job := &Job{Key: tgt.key, Desired: *tgt.d, Phase: PhaseResolve, Started: a.o.Now(), Previous: prev}
	a.mu.Lock()
	a.st.Job = job
	a.mu.Unlock()
	a.metrics.jobsStarted.Add(1)
	a.note(job, "new target %s (%s) requested by %s; running %s", tgt.d.Commit, describeTarget(tgt.d), tgt.key, shortOr(prev, "nothing"))
	return a.save()
}

func describeTarget(d *heatmeta.Desired) string {
	var parts []string
	if d.Version != "" {
		parts = append(parts, "version "+d.Version)
	}
	if d.Ref != "" {
		parts = append(parts, "ref "+d.Ref)
	}
	switch d.Payload.Kind {
	case heatmeta.PayloadGlance:
		parts = append(parts, "glance image "+d.Payload.GlanceImageID)
	case heatmeta.PayloadSwift:
		parts = append(parts, "swift container "+d.Payload.SwiftContainer)
	case heatmeta.PayloadURL:
		parts = append(parts, "repository "+heatmeta.RedactURL(d.Payload.RepoURL))
	}
	if len(parts) == 0 {
		return "default source"
	}
	return strings.Join(parts, ", ")
}

func shortOr(c ostree.Checksum, s string) string {
	if c.IsZero() {
		return s
	}
	return c.Short()
}

// pollWait is the poll interval with ±10 % jitter, so a fleet does not
// poll in lockstep.
func (a *Agent) pollWait() time.Duration {
	p := a.cfg.PollInterval
	j := time.Duration(rand.Int64N(int64(p)/5+1)) - p/10
	return p + j
}

// backoff is the wait after n consecutive failures: the poll interval
// doubled per failure up to MaxBackoff, drawn from [d/2, d).
func (a *Agent) backoff(n int) time.Duration {
	d := a.cfg.PollInterval
	for i := 1; i < n && d < a.cfg.MaxBackoff; i++ {
		d *= 2
	}
	if d > a.cfg.MaxBackoff {
		d = a.cfg.MaxBackoff
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// isPermanent sorts a failure: PermanentError and the errors retrying
// cannot fix are permanent; network and server trouble is not.
func isPermanent(err error) bool {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true
	}
	switch {
	case errors.Is(err, ostree.ErrBadSignature), errors.Is(err, ostree.ErrNoSignature), errors.Is(err, ostree.ErrVerifierRequired):
		return true
	case errors.Is(err, sysroot.ErrBadTree):
		return true
	}
	return false
}
