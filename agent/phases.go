package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gostree/gostree/agent/health"
	"github.com/gostree/gostree/agent/reboot"
	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/heatmeta"
	"github.com/gostree/gostree/internal/keyfile"
	"github.com/gostree/gostree/internal/sdnotify"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/sign"
	"github.com/gostree/gostree/sysroot"
)

// errWait is returned by a phase that must wait (a closed reboot window,
// a reboot in progress); wait says how long.
type waitError struct {
	wait   time.Duration
	reason string
}

func (w *waitError) Error() string { return w.reason }

// advance moves job through its phases until it waits, fails or ends.
func (a *Agent) advance(ctx context.Context, job *Job, wanted *heatmeta.Wanted) time.Duration {
	for range 12 {
		sdnotify.Watchdog()
		now := a.o.Now()
		if !job.NextTry.IsZero() && now.Before(job.NextTry) {
			return job.NextTry.Sub(now)
		}
		phase := job.Phase
		a.metrics.setPhase(phase)
		var err error
		switch phase {
		case PhaseResolve:
			err = a.doResolve(ctx, job)
		case PhasePull:
			err = a.doPull(ctx, job)
		case PhaseStage:
			err = a.doStage(ctx, job)
		case PhaseReboot:
			err = a.doReboot(ctx, job)
		case PhaseRebooting:
			err = a.doRebooting(ctx, job)
		case PhaseVerify:
			err = a.doVerify(ctx, job)
		case PhaseRollback:
			err = a.doRollback(ctx, job)
		case PhaseReport:
			err = a.doReport(ctx, job, wanted)
		default:
			err = permanent("unknown phase %q", phase)
		}
		var we *waitError
		switch {
		case err == nil:
			a.mu.Lock()
			job.Attempts, job.NextTry, job.LastError = 0, time.Time{}, ""
			a.mu.Unlock()
		case errors.As(err, &we):
			a.mu.Lock()
			job.Attempts, job.LastError = 0, ""
			a.mu.Unlock()
			if err := a.save(); err != nil {
				a.log.WithError(err).Error("saving state")
			}
			return we.wait
		case ctx.Err() != nil:
			return 0
		case isPermanent(err) && phase != PhaseReport:
			a.fail(ctx, job, err)
		default:
			a.mu.Lock()
			job.Attempts++
			d := a.backoff(job.Attempts)
			job.NextTry = a.o.Now().Add(d)
			job.LastError = err.Error()
			a.mu.Unlock()
			a.metrics.failures.Add(1)
			a.jobLog(job).WithError(err).WithField("retry_in", d.Round(time.Second).String()).Warn("failed; will retry")
			if err := a.save(); err != nil {
				a.log.WithError(err).Error("saving state")
			}
			return d
		}
		if err := a.save(); err != nil {
			a.log.WithError(err).Error("saving state")
			return a.backoff(1)
		}
		a.mu.Lock()
		done := a.st.Job == nil
		a.mu.Unlock()
		if done {
			return a.pollWait()
		}
	}
	return a.pollWait()
}

func (a *Agent) setPhase(job *Job, p Phase) {
	a.mu.Lock()
	job.Phase = p
	a.mu.Unlock()
}

// fail ends a job with a permanent failure before any reboot: the staged
// deployment (if any) is dropped and the failure is reported. The commit is
// not blocked (only one that failed after booting is): a new request for it,
// e.g. with allow_downgrade or after the publisher fixed its signature, is
// tried again.
func (a *Agent) fail(ctx context.Context, job *Job, err error) {
	a.note(job, "failed: %v", err)
	if preemptible(job.Phase) {
		a.dropStaged(ctx, job)
	}
	a.mu.Lock()
	job.Outcome = &Outcome{Reason: err.Error(), Booted: job.Previous, Previous: job.Previous}
	job.Phase = PhaseReport
	a.mu.Unlock()
}

// dropStaged removes the job's staged deployment, if it is still staged.
func (a *Agent) dropStaged(ctx context.Context, job *Job) {
	sys, err := a.openSysroot(ctx)
	if err != nil {
		a.log.WithError(err).Warn("cannot open the sysroot to drop a staged deployment")
		return
	}
	defer sys.Close()
	if s := sys.Staged(); s != nil && s.Checksum == job.Desired.Commit {
		if _, _, err := sys.Undeploy(ctx, 0); err != nil {
			a.log.WithError(err).Warn("cannot drop the staged deployment")
			return
		}
		a.note(job, "dropped staged deployment %s", s.Name())
	}
}

func (a *Agent) doResolve(ctx context.Context, job *Job) error {
	src, err := a.o.Resolver.Resolve(ctx, &job.Desired)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.src[job.Key] = src
	job.Source = src.Desc
	job.Phase = PhasePull
	a.mu.Unlock()
	a.note(job, "source: %s", src.Desc)
	return nil
}

func (a *Agent) verifiers(repo *ostree.Repo) (*sign.RemoteVerifier, error) {
	if a.remote == nil {
		return nil, nil
	}
	dir := repo.DefaultRemotesDir()
	if a.remote.File != "" {
		dir = filepath.Dir(a.remote.File)
	}
	v, err := sign.NewRemoteVerifier(repo.Path(), a.remote.Name, a.remote, sign.VerifierOptions{RemotesDir: dir})
	if err != nil {
		return nil, permanent("remote %s: signature keys: %w", a.remote.Name, err)
	}
	return v, nil
}

func (a *Agent) doPull(ctx context.Context, job *Job) error {
	a.mu.Lock()
	src := a.src[job.Key]
	a.mu.Unlock()
	if src == nil { // restarted: resolve again
		var err error
		if src, err = a.o.Resolver.Resolve(ctx, &job.Desired); err != nil {
			return err
		}
		a.mu.Lock()
		a.src[job.Key] = src
		a.mu.Unlock()
	}
	sys, err := sysroot.Open(a.cfg.Sysroot, a.o.Sysroot)
	if err != nil {
		return err
	}
	defer sys.Close()
	repo := sys.Repo()
	rv, err := a.verifiers(repo)
	if err != nil {
		return err
	}
	var cv ostree.CommitVerifier
	var sv ostree.SummaryVerifier
	if rv != nil {
		cv, sv = rv, rv
	}
	commit := job.Desired.Commit
	ref := src.Ref
	if ref != "" {
		if err := ostree.ValidateRefName(ref); err != nil {
			return permanent("ref %q: %w", ref, err)
		}
	}
	start := a.o.Now()
	if src.Image != nil {
		if err := a.applyPayload(ctx, repo, src, cv, ref); err != nil {
			return err
		}
	} else {
		// The commit first: its signature and date are checked before
		// any of its tree is fetched.
		o := ostree.PullOptions{Remote: a.remote, Refs: []string{commit.String()}, CommitMetadataOnly: true,
			CommitVerifier: cv, SummaryVerifier: sv, Jobs: a.cfg.Pull.Jobs}
		if _, err := ostree.Pull(ctx, repo, src.Store, o); err != nil {
			return a.pullError(src, err)
		}
	}
	if err := a.checkDowngrade(repo, job); err != nil {
		return err
	}
	if src.Image == nil {
		refs := []string{commit.String()}
		if ref != "" && a.remote != nil {
			refs = []string{ref + "@" + commit.String()}
		}
		o := ostree.PullOptions{Remote: a.remote, Refs: refs, CommitVerifier: cv, SummaryVerifier: sv, Jobs: a.cfg.Pull.Jobs}
		var last time.Time
		o.Progress = func(p ostree.PullProgress) {
			sdnotify.Watchdog() // a pull making progress is a live agent
			a.mu.Lock()
			job.Progress = &Progress{Fetched: int(p.FetchedMetadata + p.FetchedContent), Requested: int(p.Requested), Bytes: p.Bytes}
			a.mu.Unlock()
			if p.Done || time.Since(last) >= 10*time.Second {
				last = time.Now()
				a.jobLog(job).WithFields(map[string]any{"objects": p.FetchedMetadata + p.FetchedContent,
					"requested": p.Requested, "bytes": p.Bytes}).Info("pull progress")
				if err := a.save(); err != nil {
					a.log.WithError(err).Warn("saving state")
				}
			}
		}
		res, err := ostree.Pull(ctx, repo, src.Store, o)
		if err != nil {
			return a.pullError(src, err)
		}
		a.metrics.pulledBytes.Add(res.Bytes)
		a.metrics.pulledObjects.Add(res.FetchedContent + res.FetchedMetadata)
		a.note(job, "pulled %s: %d objects, %d bytes in %s%s", commit.Short(), res.FetchedContent+res.FetchedMetadata,
			res.Bytes, a.o.Now().Sub(start).Round(time.Millisecond), deltasNote(res.DeltasUsed))
	}
	a.setPhase(job, PhaseStage)
	return nil
}

func deltasNote(d []string) string {
	if len(d) == 0 {
		return ""
	}
	return " (static delta " + strings.Join(d, ", ") + ")"
}

// pullError sorts a pull failure: a missing commit in the source, a bad
// signature or corrupt metadata is permanent; the rest is retried.
func (a *Agent) pullError(src *Source, err error) error {
	err = fmt.Errorf("pull from %s: %w", src.Desc, err)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, ostree.ErrNotFound) {
		return &PermanentError{Err: err}
	}
	return err
}

func (a *Agent) applyPayload(ctx context.Context, repo *ostree.Repo, src *Source, cv ostree.CommitVerifier, ref string) error {
	if a.remote != nil {
		gpg, err := a.remote.GPGVerify()
		if err != nil {
			return permanent("remote %s: %w", a.remote.Name, err)
		}
		sig, err := a.remote.SignVerify()
		if err != nil {
			return permanent("remote %s: %w", a.remote.Name, err)
		}
		if (gpg || sig) && cv == nil {
			return &PermanentError{Err: ostree.ErrVerifierRequired}
		}
	}
	ao := glance.ApplyOptions{Verifier: cv}
	if ref != "" && a.remote != nil {
		ao.Ref = &ostree.Refspec{Remote: a.remote.Name, Ref: ref}
	}
	path := filepath.Join(a.cfg.StateDir, "payload-"+src.Image.ImageID)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := src.Glance.DownloadPayload(ctx, src.Image, f, glance.DownloadOptions{}); err != nil {
		return fmt.Errorf("glance image %s: payload: %w", src.Image.ImageID, err)
	}
	if err := glance.ApplyPayload(ctx, repo, src.Image, f, ao); err != nil {
		if errors.Is(err, ostree.ErrBadSignature) || errors.Is(err, ostree.ErrNoSignature) || errors.Is(err, glance.ErrPayload) {
			os.Remove(path)
			return &PermanentError{Err: fmt.Errorf("glance image %s: %w", src.Image.ImageID, err)}
		}
		return err
	}
	os.Remove(path)
	return nil
}

// checkDowngrade refuses a target older than the running commit unless
// the request allows it.
func (a *Agent) checkDowngrade(repo *ostree.Repo, job *Job) error {
	if job.Desired.AllowDowngrade || job.Previous.IsZero() {
		return nil
	}
	tc, err := repo.LoadCommit(job.Desired.Commit)
	if err != nil {
		return err
	}
	pc, err := repo.LoadCommit(job.Previous)
	if err != nil {
		return nil // the running commit's object is gone (pruned): nothing to compare
	}
	if tc.Timestamp < pc.Timestamp {
		return permanent("downgrade refused: commit %s (%s) is older than the running %s (%s); set allow_downgrade to permit it",
			job.Desired.Commit.Short(), time.Unix(int64(tc.Timestamp), 0).UTC().Format(time.RFC3339),
			job.Previous.Short(), time.Unix(int64(pc.Timestamp), 0).UTC().Format(time.RFC3339))
	}
	return nil
}

func (a *Agent) origin(job *Job) *keyfile.File {
	kf := keyfile.New()
	d := job.Desired
	a.mu.Lock()
	src := a.src[job.Key]
	a.mu.Unlock()
	ref := d.Ref
	if src != nil && src.Ref != "" {
		ref = src.Ref
	}
	if ref != "" && a.remote != nil {
		kf.Set("origin", "refspec", a.remote.Name+":"+ref)
		kf.Set("origin", "override-commit", d.Commit.String())
	} else {
		kf.Set("origin", "refspec", d.Commit.String())
	}
	kf.Set("gostree-agent", "request", job.Key)
	if d.Version != "" {
		kf.Set("gostree-agent", "version", d.Version)
	}
	if job.Source != "" {
		kf.Set("gostree-agent", "source", job.Source)
	}
	return kf
}

func (a *Agent) doStage(ctx context.Context, job *Job) error {
	sys, err := a.openSysroot(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	// Resumed after a crash: the deployment may already be there.
	if s := sys.Staged(); s != nil && s.Checksum == job.Desired.Commit {
		a.mu.Lock()
		job.Deployment, job.Phase = s.Name(), PhaseReboot
		a.mu.Unlock()
		return nil
	}
	booted := sys.Booted()
	if booted == nil && len(sys.Deployments) > 0 && sys.Deployments[0].Checksum == job.Desired.Commit {
		a.finishUnbooted(job, sys.Deployments[0])
		return nil
	}
	stage := a.cfg.stage() && booted != nil
	o := sysroot.DeployOptions{OSName: a.cfg.OSName, Revision: job.Desired.Commit.String(), Origin: a.origin(job),
		Stage: stage, LockFinalization: stage, BootCountingTries: a.cfg.Deploy.BootCountingTries}
	res, err := sys.Deploy(ctx, o)
	if err != nil {
		if errors.Is(err, sysroot.ErrBadTree) {
			return &PermanentError{Err: fmt.Errorf("deploy: %w", err)}
		}
		return fmt.Errorf("deploy: %w", err)
	}
	a.metrics.deployments.Add(1)
	if booted == nil {
		a.finishUnbooted(job, res.Deployment)
		return nil
	}
	a.mu.Lock()
	job.Deployment = res.Deployment.Name()
	job.Phase = PhaseReboot
	a.mu.Unlock()
	how := "staged"
	if !stage {
		how = "deployed as the default"
	}
	a.note(job, "%s deployment %s", how, res.Deployment.Name())
	return nil
}

// finishUnbooted ends a job on a sysroot that is not booted (an image
// being prepared): the deployment is the default; there is nothing to
// reboot or check here.
func (a *Agent) finishUnbooted(job *Job, d *sysroot.Deployment) {
	a.note(job, "deployed %s as the default deployment (sysroot not booted: no reboot, no health check)", d.Name())
	a.mu.Lock()
	job.Deployment = d.Name()
	job.Outcome = &Outcome{OK: true, Reason: "deployed " + d.Name() + " (not booted)", Booted: job.Previous, Previous: job.Previous}
	job.Phase = PhaseReport
	a.mu.Unlock()
}

func (a *Agent) policy(job *Job) (heatmeta.RebootPolicy, error) {
	if job.Desired.Reboot.Mode != heatmeta.RebootDefault {
		return job.Desired.Reboot, nil
	}
	return a.cfg.RebootPolicy()
}

func (a *Agent) doReboot(ctx context.Context, job *Job) error {
	if booted, err := a.bootedCommit(ctx); err == nil && booted == job.Desired.Commit {
		// Crashed between requesting the reboot and recording it: the
		// machine already runs the target.
		a.setPhase(job, PhaseVerify)
		return nil
	}
	p, err := a.policy(job)
	if err != nil {
		return &PermanentError{Err: err}
	}
	gate, err := a.o.NewGate(p)
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("reboot policy: %w", err)}
	}
	now := a.o.Now()
	a.takeApplyRequest(job)
	if p.Mode == heatmeta.RebootManual && !job.ApplyRequested {
		a.setWait(job, "staged; manual reboot policy: run `gostree-agent apply` to reboot into it")
		return &waitError{wait: a.pollWait(), reason: "manual"}
	}
	if p.Mode != heatmeta.RebootManual {
		d, err := gate.Check(ctx, now)
		if err != nil {
			return fmt.Errorf("reboot policy %s: %w", gate.Describe(), err)
		}
		if !d.Now {
			a.setWait(job, "waiting for reboot: "+d.Reason)
			w := a.pollWait()
			if !d.Next.IsZero() && d.Next.Sub(now) < w {
				w = max(d.Next.Sub(now), time.Second)
			}
			return &waitError{wait: w, reason: d.Reason}
		}
	}
	bootID, err := a.bootID()
	if err != nil {
		return err
	}
	if a.cfg.warnUsers() {
		msg := fmt.Sprintf("gostree-agent: rebooting in %s into commit %s (%s) requested by %s",
			a.cfg.Reboot.Delay.Round(time.Second), job.Desired.Commit.Short(), describeTarget(&job.Desired), job.Key)
		n, err := reboot.WarnUsers(a.o.UtmpPath, a.o.DevDir, msg)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.jobLog(job).WithError(err).Warn("cannot warn every logged-in user")
		}
		if n > 0 {
			a.note(job, "warned %d terminal(s); rebooting in %s", n, a.cfg.Reboot.Delay)
			if err := a.o.Sleep(ctx, a.cfg.Reboot.Delay); err != nil {
				return err
			}
		}
	}
	sys, err := a.openSysroot(ctx)
	if err != nil {
		return err
	}
	if s := sys.Staged(); s == nil || s.Checksum != job.Desired.Commit {
		if !job.RebootAt.IsZero() || len(sys.Deployments) > 0 && sys.Deployments[0].Checksum == job.Desired.Commit {
			// written as the default deployment (stage: false)
		} else {
			sys.Close()
			a.setPhase(job, PhaseStage)
			return errors.New("the staged deployment is gone; staging again")
		}
	}
	err = sys.UnlockFinalization()
	sys.Close()
	if err != nil {
		return err
	}
	a.mu.Lock()
	job.Phase = PhaseRebooting
	job.BootID = bootID
	job.RebootAt = a.o.Now()
	job.RebootWait = ""
	a.mu.Unlock()
	a.note(job, "rebooting into %s (policy %s)", job.Desired.Commit.Short(), gate.Describe())
	if err := a.save(); err != nil {
		return err
	}
	a.metrics.reboots.Add(1)
	if err := a.o.Rebooter.Reboot(ctx, "gostree-agent: update to "+job.Desired.Commit.String()); err != nil {
		a.setPhase(job, PhaseReboot)
		return fmt.Errorf("reboot: %w", err)
	}
	return &waitError{wait: a.pollWait(), reason: "rebooting"}
}

func (a *Agent) setWait(job *Job, why string) {
	a.mu.Lock()
	changed := job.RebootWait != why
	job.RebootWait = why
	a.mu.Unlock()
	if changed {
		a.note(job, "%s", why)
	}
}

// rebootGrace is how long the agent waits for a requested reboot before
// it asks again.
const rebootGrace = 10 * time.Minute

func (a *Agent) doRebooting(ctx context.Context, job *Job) error {
	id, err := a.bootID()
	if err != nil {
		return err
	}
	if id == job.BootID {
		if a.o.Now().Sub(job.RebootAt) > rebootGrace {
			a.note(job, "no reboot happened within %s; asking again", rebootGrace)
			if job.RollingBack {
				a.setPhase(job, PhaseRollback)
			} else {
				a.setPhase(job, PhaseReboot)
			}
			return nil
		}
		return &waitError{wait: a.pollWait(), reason: "waiting for the reboot"}
	}
	if job.RollingBack {
		sys, err := a.openSysroot(ctx)
		if err != nil {
			return err
		}
		defer sys.Close()
		cur := a.current(sys)
		a.mu.Lock()
		if cur != nil && job.Outcome != nil {
			job.Outcome.Booted = cur.Checksum
		}
		job.Phase = PhaseReport
		a.mu.Unlock()
		a.note(job, "rolled back: running %s", shortOr(job.Outcome.Booted, "unknown"))
		return nil
	}
	a.setPhase(job, PhaseVerify)
	return nil
}

func (a *Agent) doVerify(ctx context.Context, job *Job) error {
	sys, err := a.openSysroot(ctx)
	if err != nil {
		return err
	}
	booted := sys.Booted()
	if booted == nil {
		sys.Close()
		return permanent("after the reboot the system is not booted into an OSTree deployment")
	}
	if booted.Checksum != job.Desired.Commit {
		// The boot counter fell back, or finalization failed: make sure
		// the running deployment is also the default before reporting.
		reason := fmt.Sprintf("deployment %s did not boot: the machine came up in %s (boot counter fallback or failed finalization)",
			job.Desired.Commit.Short(), booted.Checksum.Short())
		if len(sys.Deployments) > 0 && !sys.Deployments[0].Booted {
			if _, _, err := sys.Rollback(ctx); err != nil {
				a.jobLog(job).WithError(err).Warn("cannot make the running deployment the default")
			}
		}
		sys.Close()
		a.mu.Lock()
		a.st.Blocked = &Blocked{Commit: job.Desired.Commit, Key: job.Key, Reason: reason, Time: a.o.Now()}
		job.Outcome = &Outcome{Reason: reason, Booted: booted.Checksum, Previous: job.Previous}
		job.Phase = PhaseReport
		a.mu.Unlock()
		a.note(job, "%s", reason)
		a.metrics.rollbacks.Add(1)
		return nil
	}
	sys.Close()
	rep, err := a.healthReport(ctx, job)
	if err != nil {
		return err
	}
	for _, c := range rep.Checks {
		state := "ok"
		if !c.OK {
			state = "FAILED: " + c.Err
		}
		a.note(job, "health check %s: %s", c.Name, state)
	}
	if !rep.OK {
		reason := "health check failed: " + rep.Summary()
		a.mu.Lock()
		a.st.Blocked = &Blocked{Commit: job.Desired.Commit, Key: job.Key, Reason: reason, Time: a.o.Now()}
		job.Outcome = &Outcome{Reason: reason, Previous: job.Previous}
		job.Phase = PhaseRollback
		a.mu.Unlock()
		a.note(job, "%s; rolling back to %s", reason, shortOr(job.Previous, "the previous deployment"))
		return nil
	}
	if sys, err = a.openSysroot(ctx); err == nil {
		if err := sys.BlessBoot(ctx); err != nil {
			a.jobLog(job).WithError(err).Warn("cannot mark the boot good")
		}
		sys.Close()
	}
	a.mu.Lock()
	job.Outcome = &Outcome{OK: true, Reason: fmt.Sprintf("running %s; %d health check(s) passed", job.Desired.Commit, len(rep.Checks)),
		Booted: job.Desired.Commit, Previous: job.Previous}
	job.Phase = PhaseReport
	a.mu.Unlock()
	a.note(job, "booted %s and passed %d health check(s)", job.Desired.Commit.Short(), len(rep.Checks))
	return nil
}

// healthReport returns this boot's health report: the one
// gostree-healthcheck.service saved (waiting for it up to ReportWait), or
// the agent runs the checks itself.
func (a *Agent) healthReport(ctx context.Context, job *Job) (health.Report, error) {
	id, err := a.bootID()
	if err != nil {
		return health.Report{}, err
	}
	path := filepath.Join(a.cfg.RunDir, "health.json")
	deadline := a.o.Now().Add(a.cfg.Health.ReportWait)
	for {
		if rep, err := health.LoadReport(path); err == nil && rep.BootID == id {
			return rep, nil
		}
		if !a.o.Now().Before(deadline) {
			break
		}
		sdnotify.Watchdog() // waiting for the healthcheck unit, not hung
		if err := a.o.Sleep(ctx, 2*time.Second); err != nil {
			return health.Report{}, err
		}
	}
	env := []string{"GOSTREE_BOOTED_COMMIT=" + job.Desired.Commit.String(), "GOSTREE_PREVIOUS_COMMIT=" + job.Previous.String(),
		"GOSTREE_REQUEST=" + job.Key}
	rep, err := a.o.Health(ctx, env)
	if err != nil {
		return rep, err
	}
	rep.BootID = id
	if err := os.MkdirAll(a.cfg.RunDir, 0o755); err == nil {
		if err := health.SaveReport(path, rep); err != nil {
			a.jobLog(job).WithError(err).Warn("cannot save the health report")
		}
	}
	return rep, nil
}

func (a *Agent) doRollback(ctx context.Context, job *Job) error {
	sys, err := a.openSysroot(ctx)
	if err != nil {
		return err
	}
	booted := sys.Booted()
	if booted == nil || booted.Checksum != job.Desired.Commit {
		sys.Close()
		a.setPhase(job, PhaseReport)
		return nil
	}
	if len(sys.Deployments) > 0 && sys.Deployments[0].Booted {
		if _, _, err := sys.Rollback(ctx); err != nil {
			sys.Close()
			return fmt.Errorf("rollback: %w", err)
		}
	}
	sys.Close()
	id, err := a.bootID()
	if err != nil {
		return err
	}
	a.mu.Lock()
	job.RollingBack = true
	job.Phase = PhaseRebooting
	job.BootID = id
	job.RebootAt = a.o.Now()
	a.mu.Unlock()
	a.note(job, "previous deployment is the default again; rebooting into it")
	a.metrics.rollbacks.Add(1)
	if err := a.save(); err != nil {
		return err
	}
	if err := a.o.Rebooter.Reboot(ctx, "gostree-agent: rolling back from "+job.Desired.Commit.String()); err != nil {
		a.setPhase(job, PhaseRollback)
		return fmt.Errorf("reboot: %w", err)
	}
	return &waitError{wait: a.pollWait(), reason: "rebooting into the previous deployment"}
}

func (a *Agent) doReport(ctx context.Context, job *Job, wanted *heatmeta.Wanted) error {
	out := job.Outcome
	if out == nil {
		out = &Outcome{Reason: "no outcome recorded"}
	}
	if !out.Signalled && job.Desired.Origin == heatmeta.OriginDeployment {
		if wanted == nil {
			return errors.New("metadata unavailable: cannot tell whether the deployment is still the current one, not signalling yet")
		}
		if !stillWanted(wanted, job) {
			a.note(job, "deployment %s is no longer in the metadata (superseded): its outcome is not signalled", job.Desired.DeploymentID)
			a.mu.Lock()
			out.Signalled = true
			a.mu.Unlock()
		}
	}
	if !out.Signalled {
		if err := a.signal(ctx, &job.Desired, out, job.Log); err != nil {
			a.metrics.signalErrors.Add(1)
			if heatmeta.IsRetryable(err) {
				return err
			}
			a.jobLog(job).WithError(err).Error("signal failed permanently; giving up on it")
		}
		a.mu.Lock()
		out.Signalled = true
		a.mu.Unlock()
	}
	// The node is steady again (new or previous deployment): give back a
	// FleetLock slot.
	if p, err := a.policy(job); err == nil && p.Mode == heatmeta.RebootFleetLock {
		if g, err := a.o.NewGate(p); err == nil {
			if err := g.Release(ctx); err != nil {
				if reboot.IsRetryable(err) {
					return fmt.Errorf("fleet lock release: %w", err)
				}
				a.jobLog(job).WithError(err).Error("fleet lock: the server refused the release")
			}
		}
	}
	if out.OK {
		a.jobLog(job).Info("done: " + out.Reason)
	} else {
		a.jobLog(job).Error("failed: " + out.Reason)
	}
	a.mu.Lock()
	a.st.addHandled(Handled{Key: job.Key, Commit: job.Desired.Commit, OK: out.OK, Reason: out.Reason, Time: a.o.Now()})
	a.st.Job = nil
	delete(a.src, job.Key)
	a.mu.Unlock()
	a.metrics.jobDone(out.OK)
	return nil
}

// signal reports an outcome to Heat as heat-config does; the gostree
// metadata key and NO_SIGNAL deployments need none.
func (a *Agent) signal(ctx context.Context, d *heatmeta.Desired, out *Outcome, log []string) error {
	if d.Origin != heatmeta.OriginDeployment || d.Signal.Transport == "" || d.Signal.Transport == heatmeta.NoSignal {
		return nil
	}
	// "result" is sent only with a failure: templates declare it as an
	// error_output, which makes Heat mark the deployment FAILED with it.
	r := heatmeta.Outcome{Outputs: map[string]any{}}
	if !out.OK {
		r.StatusCode = 1
		r.Stderr = out.Reason
		r.Outputs["result"] = out.Reason
	}
	r.Stdout = strings.Join(log, "\n")
	if !out.Booted.IsZero() {
		r.Outputs["booted_commit"] = out.Booted.String()
	}
	if !out.Previous.IsZero() {
		r.Outputs["previous_commit"] = out.Previous.String()
	}
	return a.o.Signaller.Send(ctx, d.Signal, r)
}

// bootedCommit returns the booted deployment's commit (zero when not
// booted).
func (a *Agent) bootedCommit(ctx context.Context) (ostree.Checksum, error) {
	sys, err := a.openSysroot(ctx)
	if err != nil {
		return ostree.Checksum{}, err
	}
	defer sys.Close()
	if b := sys.Booted(); b != nil {
		return b.Checksum, nil
	}
	return ostree.Checksum{}, nil
}
