package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/internal/keyfile"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/sysroot/etcmerge"
)

// DeployOptions controls Deploy.
type DeployOptions struct {
	// OSName is the stateroot; "" means the booted one (or the only one).
	OSName string
	// Revision is a refspec or commit checksum to resolve in the repo.
	Revision string
	// Origin replaces the default origin ([origin] refspec=Revision).
	Origin *keyfile.File

	// Kernel arguments. Without any of these the merge deployment's
	// arguments are inherited.
	Karg              []string // replace KEY=VALUE (or add)
	KargAppend        []string
	KargDelete        []string
	KargNone          bool
	KargProcCmdline   bool
	ProcCmdlinePath   string // default /proc/cmdline
	Retain            bool
	RetainPending     bool
	RetainRollback    bool
	NotAsDefault      bool
	Stage             bool
	NoPrune           bool
	NoMerge           bool
	NoCleanup         bool
	BootCountingTries int // write the new entry with a systemd boot counter
	// LockFinalization (with Stage) also creates
	// RUNDIR/ostree/staged-deployment-locked, so the deployment is not
	// finalized at shutdown until that file is removed.
	LockFinalization bool
	Etc              etcmerge.Options
}

// DeployResult describes a deployment.
type DeployResult struct {
	Deployment *Deployment
	Merge      *Deployment
	Etc        *etcmerge.Result
	Write      *WriteResult // nil when staged
	// VarIgnored is set when the commit has content in /var, which is
	// not deployed (ostree prints a note).
	VarIgnored bool
	// VarStamped is set when var/.ostree-selabeled was created.
	VarStamped bool
}

func (s *Sysroot) resolveOS(osname string) (string, error) {
	if osname == "" {
		if b := s.Booted(); b != nil {
			return b.OSName, nil
		}
		roots, err := s.Stateroots()
		if err != nil {
			return "", err
		}
		if len(roots) == 1 {
			return roots[0], nil
		}
		return "", fmt.Errorf("%w and no --os= given", ErrNotBooted)
	}
	if st, err := os.Stat(s.p("ostree", "deploy", osname)); err != nil || !st.IsDir() {
		return "", fmt.Errorf("no such stateroot %q (run `admin os-init %s`)", osname, osname)
	}
	return osname, nil
}

// computeKargs applies the karg options to the merge deployment's
// arguments.
func computeKargs(o *DeployOptions, merge *Deployment) ([]string, error) {
	var args []string
	switch {
	case o.KargNone:
	case o.KargProcCmdline:
		p := o.ProcCmdlinePath
		if p == "" {
			p = "/proc/cmdline"
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading kernel command line: %w", err)
		}
		for _, a := range splitKargs(string(b)) {
			if strings.HasPrefix(a, "BOOT_IMAGE=") || strings.HasPrefix(a, "initrd=") {
				continue
			}
			args = append(args, a)
		}
	case merge != nil:
		args = append(args, merge.Kargs...)
	}
	for _, a := range o.Karg {
		args = kargsReplace(args, a)
	}
	args = append(args, o.KargAppend...)
	for _, a := range o.KargDelete {
		var found bool
		if args, found = kargsDelete(args, a); !found {
			return nil, fmt.Errorf("kernel argument %q not found", a)
		}
	}
	return args, nil
}

func (s *Sysroot) allocateSerial(osname string, c ostree.Checksum) (int, error) {
	ents, err := os.ReadDir(s.p("ostree", "deploy", osname, "deploy"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	next := 0
	for _, e := range ents {
		cs, serial, ok := strings.Cut(e.Name(), ".")
		if !ok || cs != c.String() || strings.Contains(serial, ".") {
			continue
		}
		if n, err := strconv.Atoi(serial); err == nil && n >= next {
			next = n + 1
		}
	}
	return next, nil
}

// Deploy checks out a commit as a new deployment of a stateroot, merges
// its /etc from the merge deployment and makes it the default (or, with
// Stage, records it for FinalizeStaged). Nothing the current default
// deployment needs is touched before the final switch; on error the new
// deployment is removed again.
func (s *Sysroot) Deploy(ctx context.Context, o DeployOptions) (res *DeployResult, err error) {
	if s.lock == nil {
		return nil, errors.New("deploy: sysroot is not locked")
	}
	if err := s.Load(); err != nil {
		return nil, err
	}
	osname, err := s.resolveOS(o.OSName)
	if err != nil {
		return nil, err
	}
	if o.LockFinalization && !o.Stage {
		return nil, errors.New("deploy: lock-finalization needs stage")
	}
	if o.Stage && s.Booted() == nil && !s.opts.AllowUnbootedStage {
		return nil, fmt.Errorf("cannot stage deployment: %w", ErrNotBooted)
	}
	if o.Revision == "" {
		return nil, errors.New("deploy: no revision given")
	}
	csum, err := s.repo.ResolveRev(o.Revision)
	if err != nil {
		return nil, fmt.Errorf("deploy: resolving %s: %w", o.Revision, err)
	}
	layout, err := inspectCommit(ctx, s.repo, csum)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", csum, err)
	}
	origin := o.Origin
	if origin == nil {
		origin = keyfile.New()
		origin.Set("origin", "refspec", o.Revision)
	}
	// The merge deployment is kept in the new list even with NoMerge,
	// which only skips inheriting its /etc and kernel arguments.
	keepMerge := s.MergeDeployment(osname)
	if keepMerge != nil && keepMerge.OSName != osname {
		keepMerge = nil
	}
	merge := keepMerge
	if o.NoMerge {
		merge = nil
	}
	kargs, err := computeKargs(&o, merge)
	if err != nil {
		return nil, err
	}
	serial, err := s.allocateSerial(osname, csum)
	if err != nil {
		return nil, err
	}
	d := &Deployment{OSName: osname, Checksum: csum, Serial: serial, BootCsum: layout.kernel.BootCsum,
		Origin: origin, Kargs: kargs, Version: layout.commit.Version(), kernel: &layout.kernel}
	res = &DeployResult{Deployment: d, Merge: merge, VarIgnored: layout.hasVar}
	dir := s.deployPath(d)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if err != nil && !committed {
			clearImmutable(dir)
			os.RemoveAll(dir)
			os.Remove(dir + ".origin")
		}
	}()
	crashPoint("deploy: start")
	if err = s.repo.Checkout(ctx, csum, dir, ostree.CheckoutOptions{Hardlink: true}); err != nil {
		return nil, fmt.Errorf("deploy: checking out %s: %w", csum, err)
	}
	crashPoint("deploy: checked out")
	// Overlay whiteouts are found from the commit's metadata while /etc
	// is merged.
	type whiteouts struct {
		paths []string
		err   error
	}
	wch := make(chan whiteouts, 1)
	go func() {
		p, err := findWhiteouts(s.repo, layout.commit.RootTree)
		wch <- whiteouts{p, err}
	}()
	defer func() {
		if wch != nil {
			<-wch
		}
	}()
	if layout.etcOnly {
		if err = os.Rename(filepath.Join(dir, "etc"), filepath.Join(dir, "usr/etc")); err != nil {
			return nil, fmt.Errorf("deploy: moving /etc to /usr/etc: %w", err)
		}
	}
	if layout.hasEtc {
		var oldDefaults, cur string
		if merge != nil && !o.Stage {
			oldDefaults, cur = filepath.Join(s.deployPath(merge), "usr/etc"), filepath.Join(s.deployPath(merge), "etc")
			if _, err := os.Lstat(oldDefaults); err != nil {
				oldDefaults, cur = "", ""
			} else if _, err := os.Lstat(cur); err != nil {
				oldDefaults, cur = "", ""
			}
		}
		res.Etc, err = etcmerge.Merge(oldDefaults, cur, filepath.Join(dir, "usr/etc"), filepath.Join(dir, "etc"), o.Etc)
		if err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
		crashPoint("deploy: etc merged")
	}
	wo := <-wch
	wch = nil
	if wo.err != nil {
		err = fmt.Errorf("deploy: %w", wo.err)
		return nil, err
	}
	if err = applyWhiteouts(dir, wo.paths); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	removeUpdatedStamps(dir)
	stamp := s.p("ostree", "deploy", osname, "var", ".ostree-selabeled")
	if _, serr := os.Lstat(stamp); errors.Is(serr, fs.ErrNotExist) {
		if _, verr := os.Stat(filepath.Dir(stamp)); verr == nil {
			if err = atomicfile.WriteFile(stamp, nil, 0o644); err != nil {
				return nil, err
			}
			res.VarStamped = true
		}
	}
	if err = atomicfile.WriteFile(dir+".origin", origin.Bytes(), 0o644); err != nil {
		return nil, err
	}
	crashPoint("deploy: origin written")
	if !s.opts.MutableDeployments && !o.Stage {
		if err = setImmutable(dir, true); err != nil {
			return nil, fmt.Errorf("deploy: setting the immutable flag: %w", err)
		}
	}
	if err = s.syncAll(); err != nil {
		return nil, err
	}
	if o.Stage {
		if o.LockFinalization {
			if err = os.MkdirAll(filepath.Dir(s.stagedLockedPath()), 0o755); err != nil {
				return nil, err
			}
			if err = atomicfile.WriteFile(s.stagedLockedPath(), nil, 0o644); err != nil {
				return nil, err
			}
		}
		if err = s.writeStaged(d, merge, o.BootCountingTries); err != nil {
			return nil, err
		}
		committed = true
		crashPoint("deploy: staged recorded")
		if err := s.Load(); err != nil {
			return res, err
		}
		if err := s.regenerateRefs(); err != nil {
			return res, err
		}
		for _, x := range s.Deployments {
			if x.Staged {
				res.Deployment = x
			}
		}
		return res, nil
	}
	list := s.newDeploymentList(d, keepMerge, &o)
	tries := map[*Deployment]int{}
	if o.BootCountingTries > 0 {
		tries[d] = o.BootCountingTries
	}
	// Any non-staged write drops a staged deployment.
	if s.Staged() != nil {
		if err := os.Remove(s.stagedPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	res.Write, err = s.writeDeployments(ctx, list, tries, WriteOptions{NoPrune: o.NoPrune, NoCleanup: o.NoCleanup})
	if res.Write != nil {
		// The switch happened (an error can only come from the cleanup).
		committed = true
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func removeUpdatedStamps(dir string) {
	os.Remove(filepath.Join(dir, "etc", ".updated"))
	os.Remove(filepath.Join(dir, "var", ".updated"))
}

// newDeploymentList is ostree_sysroot_simple_write_deployment: the new
// deployment first (or right after the crossover deployment with
// NotAsDefault), then the deployments worth keeping in their current
// order. The crossover is the booted deployment when booted into this
// stateroot, else the merge deployment; deployments before it are
// "pending", after it "rollback".
func (s *Sysroot) newDeploymentList(d, merge *Deployment, o *DeployOptions) []*Deployment {
	booted := s.Booted()
	crossover := merge
	if booted != nil && booted.OSName == d.OSName {
		crossover = booted
	}
	var out []*Deployment
	added := false
	if !o.NotAsDefault {
		out = append(out, d)
		added = true
	}
	passed := false
	for _, x := range s.nonStaged() {
		isCross := x.same(crossover)
		keep := o.Retain || x.Pinned() || x.OSName != d.OSName || x.same(booted) || x.same(merge) ||
			(o.RetainPending && !passed) || (o.RetainRollback && passed)
		if keep {
			out = append(out, x)
		}
		if !added && isCross {
			out = append(out, d)
			added = true
		}
		if isCross {
			passed = true
		}
	}
	if !added {
		out = append(out, d)
	}
	return out
}
