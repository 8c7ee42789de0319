package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/gvariant"
	"github.com/gostree/gostree/sysroot/etcmerge"
)

func (s *Sysroot) stagedPath() string {
	return filepath.Join(s.opts.RunDir, "ostree", "staged-deployment")
}

func (s *Sysroot) stagedLockedPath() string {
	return filepath.Join(s.opts.RunDir, "ostree", "staged-deployment-locked")
}

func depVariant(d *Deployment) gvariant.Variant {
	return gvariant.NewVariant("a{sv}", []any{
		gvariant.DictEntry{Key: "name", Value: gvariant.NewVariant("s", d.Name())},
		gvariant.DictEntry{Key: "osname", Value: gvariant.NewVariant("s", d.OSName)},
		gvariant.DictEntry{Key: "bootcsum", Value: gvariant.NewVariant("s", d.BootCsum)},
	})
}

func depFromVariant(v gvariant.Variant) (*Deployment, error) {
	if v.Type.String() != "a{sv}" {
		return nil, fmt.Errorf("deployment is %s, not a{sv}", v.Type)
	}
	m := map[string]string{}
	for _, e := range v.Value.([]any) {
		de := e.(gvariant.DictEntry)
		vv := de.Value.(gvariant.Variant)
		if vv.Type.String() == "s" {
			m[de.Key.(string)] = vv.Value.(string)
		}
	}
	d, err := parseDeployName(m["osname"], m["name"])
	if err != nil {
		return nil, err
	}
	if d.OSName == "" {
		return nil, errors.New("deployment without osname")
	}
	d.BootCsum = m["bootcsum"]
	return d, nil
}

// writeStaged records d (checked out, origin written) as the staged
// deployment, as ostree's /run/ostree/staged-deployment.
func (s *Sysroot) writeStaged(d, merge *Deployment, tries int) error {
	md := ostree.Metadata{}
	md.Set("target", depVariant(d))
	if merge != nil {
		md.Set("merge-deployment", depVariant(merge))
	}
	kargs := make([]any, len(d.Kargs))
	for i, k := range d.Kargs {
		kargs[i] = k
	}
	md.Set("kargs", gvariant.NewVariant("as", kargs))
	if tries > 0 {
		md.Set("gostree.boot-tries", gvariant.NewVariant("s", strconv.Itoa(tries)))
	}
	b, err := ostree.EncodeMetadata(md)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.stagedPath()), 0o755); err != nil {
		return fmt.Errorf("writing staged deployment: %w", err)
	}
	return atomicfile.WriteFile(s.stagedPath(), b, 0o644)
}

type stagedState struct {
	target *Deployment
	merge  *Deployment
	kargs  []string
	tries  int
}

func (s *Sysroot) readStagedState() (*stagedState, error) {
	b, err := os.ReadFile(s.stagedPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeStagedState(b, s.stagedPath())
}

// decodeStagedState parses the a{sv} of a staged-deployment file.
func decodeStagedState(b []byte, path string) (*stagedState, error) {
	md, err := ostree.DecodeMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("staged deployment %s: %w", path, err)
	}
	st := &stagedState{}
	tv, ok := md.Lookup("target")
	if !ok {
		return nil, fmt.Errorf("staged deployment %s: no target", path)
	}
	if st.target, err = depFromVariant(tv); err != nil {
		return nil, fmt.Errorf("staged deployment %s: %w", path, err)
	}
	if mv, ok := md.Lookup("merge-deployment"); ok {
		if st.merge, err = depFromVariant(mv); err != nil {
			return nil, fmt.Errorf("staged deployment %s: merge deployment: %w", path, err)
		}
	}
	if kv, ok := md.Lookup("kargs"); ok && kv.Type.String() == "as" {
		for _, k := range kv.Value.([]any) {
			st.kargs = append(st.kargs, k.(string))
		}
	}
	if t, ok := md.String("gostree.boot-tries"); ok {
		st.tries, _ = strconv.Atoi(t)
	}
	return st, nil
}

func (s *Sysroot) readStaged() (*Deployment, error) {
	st, err := s.readStagedState()
	if err != nil || st == nil {
		return nil, err
	}
	d := st.target
	if _, err := os.Lstat(s.deployPath(d)); err != nil {
		// The deployment directory is gone (cleaned up): the record is
		// stale.
		return nil, nil
	}
	d.Staged = true
	d.Kargs = st.kargs
	d.stagedMerge = st.merge
	if err := s.loadOrigin(d); err != nil {
		return nil, err
	}
	return d, nil
}

// FinalizeResult is what FinalizeStaged did.
type FinalizeResult struct {
	Deployment *Deployment
	Etc        *etcmerge.Result
	Write      *WriteResult
}

// ErrNoStaged is returned by FinalizeStaged when nothing is staged.
var ErrNoStaged = errors.New("no staged deployment")

// ErrFinalizationLocked is returned by FinalizeStaged when
// RUNDIR/ostree/staged-deployment-locked exists (the staged deployment
// waits for an explicit unlock, e.g. by an update agent's maintenance
// window); nothing is changed.
var ErrFinalizationLocked = errors.New("not finalizing: the staged deployment is locked")

// FinalizeStaged turns the staged deployment into the default one: unless
// RUNDIR/ostree/staged-deployment-locked exists, it removes the staged
// record, merges /etc from the merge deployment's /etc as it is now, and
// writes the deployment list (staged first, then the deployments a
// normal deploy would keep). The repository is not pruned.
func (s *Sysroot) FinalizeStaged(ctx context.Context, etcOpts etcmerge.Options) (*FinalizeResult, error) {
	if s.lock == nil {
		return nil, errors.New("finalize: sysroot is not locked")
	}
	if err := s.Load(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(s.stagedLockedPath()); err == nil {
		return nil, fmt.Errorf("%w: %s exists", ErrFinalizationLocked, s.stagedLockedPath())
	}
	st, err := s.readStagedState()
	if err != nil {
		return nil, err
	}
	staged := s.Staged()
	if st == nil || staged == nil {
		return nil, ErrNoStaged
	}
	var merge *Deployment
	if st.merge != nil {
		for _, d := range s.nonStaged() {
			if d.same(st.merge) {
				merge = d
			}
		}
	}
	res := &FinalizeResult{Deployment: staged}
	dir := s.deployPath(staged)
	// The /etc of the staged deployment is a copy of its defaults until
	// now; redo it with the merge deployment's /etc of this moment.
	clearImmutable(dir)
	if _, err := os.Lstat(filepath.Join(dir, "usr/etc")); err == nil {
		tmp := filepath.Join(dir, ".etc.finalize")
		os.RemoveAll(tmp)
		var oldDefaults, cur string
		if merge != nil {
			oldDefaults, cur = filepath.Join(s.deployPath(merge), "usr/etc"), filepath.Join(s.deployPath(merge), "etc")
			if _, err := os.Lstat(cur); err != nil {
				oldDefaults, cur = "", ""
			}
		}
		r, err := etcmerge.Merge(oldDefaults, cur, filepath.Join(dir, "usr/etc"), tmp, etcOpts)
		if err != nil {
			s.recordFinalizeFailure(err)
			return nil, err
		}
		res.Etc = r
		crashPoint("finalize: etc merged")
		if err := os.RemoveAll(filepath.Join(dir, "etc")); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, filepath.Join(dir, "etc")); err != nil {
			return nil, err
		}
		removeUpdatedStamps(dir)
	}
	if !s.opts.MutableDeployments {
		if err := setImmutable(dir, true); err != nil {
			return nil, err
		}
	}
	crashPoint("finalize: etc in place")
	// Only now is the record removed: a crash before this point leaves
	// the staged deployment to be finalized again.
	if err := os.Remove(s.stagedPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	list := []*Deployment{staged}
	for _, d := range s.nonStaged() {
		if d.OSName != staged.OSName || d.Pinned() || d.Booted || d.same(merge) {
			list = append(list, d)
		}
	}
	staged.Staged = false
	staged.Kargs = st.kargs
	tries := map[*Deployment]int{}
	if st.tries > 0 {
		tries[staged] = st.tries
	}
	w, err := s.writeDeployments(ctx, list, tries, WriteOptions{NoPrune: true})
	if err != nil {
		s.recordFinalizeFailure(err)
		return nil, err
	}
	res.Write = w
	os.Remove(s.p("boot", "ostree", "finalize-failure.stamp"))
	return res, nil
}

func (s *Sysroot) recordFinalizeFailure(err error) {
	p := s.p("boot", "ostree", "finalize-failure.stamp")
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		atomicfile.WriteFile(p, []byte(err.Error()+"\n"), 0o644)
	}
}
