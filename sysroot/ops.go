package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/internal/keyfile"
	"github.com/gostree/gostree/ostree"
)

// InitFS creates the top-level layout of a new sysroot at path, as
// `ostree admin init-fs`: boot dev home proc run sys (0755), root (0700),
// tmp (01777), ostree/deploy and a bare repository in ostree/repo.
func InitFS(path string) error {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("init-fs: %w", err)
	}
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{{"boot", 0o755}, {"dev", 0o755}, {"home", 0o755}, {"proc", 0o755}, {"run", 0o755}, {"sys", 0o755},
		{"root", 0o700}, {"tmp", 0o777 | os.ModeSticky}, {"ostree", 0o755}, {"ostree/deploy", 0o755}} {
		p := filepath.Join(path, d.name)
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("init-fs: %w", err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("init-fs: %w", err)
		}
	}
	r, err := ostree.Init(filepath.Join(path, "ostree", "repo"), ostree.ModeBare, ostree.InitOptions{})
	if err != nil {
		return fmt.Errorf("init-fs: %w", err)
	}
	return r.Close()
}

// InitOS creates the stateroot osname: ostree/deploy/OS/var with tmp,
// lib, log, run -> ../run and lock -> ../run/lock, as `admin os-init`.
func (s *Sysroot) InitOS(osname string) error {
	if osname == "" || strings.ContainsAny(osname, "/\x00") || osname == "." || osname == ".." {
		return fmt.Errorf("invalid stateroot name %q", osname)
	}
	base := s.p("ostree", "deploy", osname)
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{{"", 0o755}, {"var", 0o755}, {"var/tmp", 0o777 | os.ModeSticky}, {"var/lib", 0o755}, {"var/log", 0o755}} {
		p := filepath.Join(base, d.name)
		if err := os.Mkdir(p, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return fmt.Errorf("os-init: %w", err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("os-init: %w", err)
		}
	}
	for name, target := range map[string]string{"var/run": "../run", "var/lock": "../run/lock"} {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("os-init: %w", err)
		}
	}
	return nil
}

// ErrBadIndex is wrapped by errors about a deployment index out of range.
var ErrBadIndex = errors.New("invalid deployment index")

// Get returns the deployment at index i.
func (s *Sysroot) Get(i int) (*Deployment, error) {
	if i < 0 || i >= len(s.Deployments) {
		return nil, fmt.Errorf("%w %d (there are %d deployments)", ErrBadIndex, i, len(s.Deployments))
	}
	return s.Deployments[i], nil
}

// Undeploy removes the deployment at index i (pinned ones too, as ostree
// 2022.7) and cleans up.
func (s *Sysroot) Undeploy(ctx context.Context, i int) (*Deployment, *WriteResult, error) {
	if err := s.Load(); err != nil {
		return nil, nil, err
	}
	d, err := s.Get(i)
	if err != nil {
		return nil, nil, err
	}
	if d.Booted {
		return nil, nil, fmt.Errorf("cannot undeploy the booted deployment %s", d.Name())
	}
	if d.Staged {
		if err := os.Remove(s.stagedPath()); err != nil {
			return nil, nil, err
		}
		if err := s.Load(); err != nil {
			return nil, nil, err
		}
		cr, err := s.Cleanup(ctx, CleanupOptions{})
		return d, &WriteResult{Cleanup: cr, BootVersion: s.BootVersion, SubBootVersion: s.SubBootVersion}, err
	}
	var list []*Deployment
	for _, x := range s.nonStaged() {
		if x != d {
			list = append(list, x)
		}
	}
	w, err := s.writeDeployments(ctx, list, nil, WriteOptions{})
	return d, w, err
}

// SetPinned pins or unpins the deployment at index i
// ([libostree-transient] pinned=true in its origin).
func (s *Sysroot) SetPinned(i int, pin bool) (*Deployment, error) {
	if err := s.Load(); err != nil {
		return nil, err
	}
	d, err := s.Get(i)
	if err != nil {
		return nil, err
	}
	if d.Staged {
		return nil, errors.New("cannot pin a staged deployment")
	}
	kf := d.Origin
	if kf == nil {
		kf = keyfile.New()
	}
	if pin {
		kf.Set("libostree-transient", "pinned", "true")
	} else {
		// ostree leaves the emptied group in place; so do we.
		kf.Delete("libostree-transient", "pinned")
	}
	if err := atomicfile.WriteFile(s.originPath(d), kf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	d.Origin = kf
	return d, nil
}

// SetOrigin replaces the origin of the deployment at index i.
func (s *Sysroot) SetOrigin(i int, origin *keyfile.File) (*Deployment, error) {
	if err := s.Load(); err != nil {
		return nil, err
	}
	d, err := s.Get(i)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(s.originPath(d), origin.Bytes(), 0o644); err != nil {
		return nil, err
	}
	d.Origin = origin
	return d, nil
}

// Rollback makes the previous deployment the default, as `rpm-ostree
// rollback`: when booted with a pending deployment, the booted one moves
// back to the top; otherwise the first rollback deployment (the one after
// the booted, or after the default when not booted) does. A staged
// deployment is dropped.
func (s *Sysroot) Rollback(ctx context.Context) (*Deployment, *WriteResult, error) {
	if err := s.Load(); err != nil {
		return nil, nil, err
	}
	list := s.nonStaged()
	if len(list) < 2 {
		return nil, nil, errors.New("rollback: no previous deployment to roll back to")
	}
	target := 1
	if b := s.Booted(); b != nil {
		bi := -1
		for i, d := range list {
			if d == b {
				bi = i
			}
		}
		if bi > 0 {
			target = bi
		} else {
			target = -1
			for i := bi + 1; i < len(list); i++ {
				if list[i].OSName == b.OSName {
					target = i
					break
				}
			}
			if target < 0 {
				return nil, nil, errors.New("rollback: no rollback deployment")
			}
		}
	}
	d := list[target]
	nl := []*Deployment{d}
	for i, x := range list {
		if i != target {
			nl = append(nl, x)
		}
	}
	if s.Staged() != nil {
		if err := os.Remove(s.stagedPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		if err := s.Load(); err != nil {
			return nil, nil, err
		}
	}
	w, err := s.writeDeployments(ctx, nl, nil, WriteOptions{NoPrune: true})
	return d, w, err
}

// EditKargs applies replace (KEY=VALUE), append and delete (KEY=VALUE, or
// KEY for every value) to a copy of args. Deleting an absent argument or
// the ostree= argument is an error.
func EditKargs(args, appendArgs, deleteArgs, replaceArgs []string) ([]string, error) {
	out := append([]string(nil), args...)
	for _, a := range replaceArgs {
		out = kargsReplace(out, a)
	}
	out = append(out, appendArgs...)
	for _, a := range deleteArgs {
		if strings.HasPrefix(a, "ostree=") || a == "ostree" {
			return nil, errors.New("kargs: the ostree= argument cannot be deleted")
		}
		var found bool
		if out, found = kargsDelete(out, a); !found {
			return nil, fmt.Errorf("kernel argument %q not found", a)
		}
	}
	return out, nil
}

// SetKargs replaces the kernel arguments of deployment d in place,
// rewriting its BLS entry atomically in the current loader directory (no
// new boot version; the ostree= argument must be kept).
func (s *Sysroot) SetKargs(d *Deployment, args []string) error {
	if d.Staged || d.Entry == nil {
		return errors.New("kargs: cannot edit a staged deployment in place")
	}
	ok := false
	for _, a := range args {
		ok = ok || strings.HasPrefix(a, "ostree=")
	}
	if !ok {
		return errors.New("kargs: the ostree= argument is missing")
	}
	e := d.Entry
	e.Set("options", strings.Join(args, " "))
	p := s.p("boot", fmt.Sprintf("loader.%d", s.BootVersion), "entries", e.FileName)
	if err := atomicfile.WriteFile(p, e.Bytes(), 0o644); err != nil {
		return err
	}
	d.Kargs = args
	return nil
}
