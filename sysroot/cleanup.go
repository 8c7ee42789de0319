package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/ostree"
)

// CleanupOptions controls Cleanup.
type CleanupOptions struct {
	// NoPrune skips pruning the repository.
	NoPrune bool
}

// CleanupResult lists what Cleanup removed.
type CleanupResult struct {
	DeletedDeployments []string // OS/CSUM.SERIAL
	DeletedBootDirs    []string // boot/ostree/OS-BOOTCSUM
	DeletedOther       []string // inactive loader/bootlink dirs, leftovers
	Prune              *ostree.PruneResult
}

// Cleanup removes everything the current deployment list does not use:
// the inactive boot/loader.N and ostree/boot.N.M, deployment directories
// and origins no entry references (partial ones left by a crash
// included), unused kernels in boot/ostree, temporary files; regenerates
// the ostree/B/S/I refs and prunes the repository (refs only, depth 0),
// as `ostree admin cleanup`. The booted and staged deployments are never
// removed.
func (s *Sysroot) Cleanup(ctx context.Context, o CleanupOptions) (*CleanupResult, error) {
	if s.lock == nil {
		return nil, errors.New("cleanup: sysroot is not locked")
	}
	if err := s.Load(); err != nil {
		return nil, err
	}
	res := &CleanupResult{}
	remove := func(p string) error {
		if _, err := os.Lstat(p); err != nil {
			return nil
		}
		clearImmutable(p)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		rel, _ := filepath.Rel(s.path, p)
		res.DeletedOther = append(res.DeletedOther, rel)
		return nil
	}
	_, haveLoader, _ := readVersionLink(s.p("boot", "loader"), "loader.")
	ob := 1 - s.BootVersion
	stale := []string{
		s.p("boot", fmt.Sprintf("loader.%d", ob)),
		s.p("ostree", fmt.Sprintf("boot.%d", ob)),
		s.p("ostree", fmt.Sprintf("boot.%d.0", ob)),
		s.p("ostree", fmt.Sprintf("boot.%d.1", ob)),
		s.p("ostree", fmt.Sprintf("boot.%d.%d", s.BootVersion, 1-s.SubBootVersion)),
		s.p("boot", "loader.tmp"),
	}
	if !haveLoader {
		// Nothing was ever switched to: every bootversion is a leftover.
		stale = append(stale, s.p("boot", "loader.0"), s.p("ostree", "boot.0"), s.p("ostree", "boot.0.0"), s.p("ostree", "boot.0.1"))
	}
	for _, p := range stale {
		if err := remove(p); err != nil {
			return nil, err
		}
	}
	crashPoint("cleanup: inactive boot dirs")
	for _, dir := range []string{s.p("boot"), s.p("ostree")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
				if err := remove(filepath.Join(dir, e.Name())); err != nil {
					return nil, err
				}
			}
		}
	}
	active := map[string]bool{}
	bootcsums := map[string]bool{}
	for _, d := range s.Deployments {
		active[d.OSName+"/"+d.Name()] = true
		bootcsums[d.OSName+"-"+d.BootCsum] = true
	}
	roots, err := s.Stateroots()
	if err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	for _, osname := range roots {
		dir := s.p("ostree", "deploy", osname, "deploy")
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cleanup: %w", err)
		}
		// Origins first: a deployment dir without its origin is still
		// unreferenced, and is removed next time if a crash intervenes.
		for _, e := range ents {
			n := e.Name()
			base := strings.TrimSuffix(n, ".origin")
			if active[osname+"/"+base] {
				continue
			}
			if strings.HasSuffix(n, ".origin") || strings.HasPrefix(n, ".") {
				if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("cleanup: %w", err)
				}
			}
		}
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() || active[osname+"/"+n] || strings.HasPrefix(n, ".") {
				continue
			}
			p := filepath.Join(dir, n)
			clearImmutable(p)
			if err := os.RemoveAll(p); err != nil {
				return nil, fmt.Errorf("cleanup: deleting deployment %s: %w", n, err)
			}
			res.DeletedDeployments = append(res.DeletedDeployments, osname+"/"+n)
			crashPoint("cleanup: deployment deleted")
		}
	}
	bootOstree := s.p("boot", "ostree")
	ents, _ := os.ReadDir(bootOstree)
	for _, e := range ents {
		p := filepath.Join(bootOstree, e.Name())
		if !e.IsDir() {
			continue
		}
		if !bootcsums[e.Name()] {
			if err := os.RemoveAll(p); err != nil {
				return nil, fmt.Errorf("cleanup: %w", err)
			}
			res.DeletedBootDirs = append(res.DeletedBootDirs, e.Name())
			continue
		}
		files, _ := os.ReadDir(p)
		for _, f := range files {
			if strings.HasPrefix(f.Name(), ".") && strings.Contains(f.Name(), ".tmp-") {
				os.Remove(filepath.Join(p, f.Name()))
			}
		}
	}
	crashPoint("cleanup: boot dirs")
	if err := s.regenerateRefs(); err != nil {
		return nil, err
	}
	crashPoint("cleanup: refs")
	if !o.NoPrune {
		po := ostree.DefaultPruneOptions()
		po.RefsOnly = true
		po.Depth = 0
		pr, err := s.repo.Prune(ctx, po)
		if err != nil {
			return nil, fmt.Errorf("cleanup: pruning the repository: %w", err)
		}
		res.Prune = pr
	}
	return res, nil
}

// regenerateRefs points ostree/B/S/I at every current deployment (the
// staged one included) and removes the others.
func (s *Sysroot) regenerateRefs() error {
	refs := map[string]ostree.Checksum{}
	for i, d := range s.Deployments {
		refs[fmt.Sprintf("ostree/%d/%d/%d", s.BootVersion, s.SubBootVersion, i)] = d.Checksum
	}
	cur, err := s.repo.ListRefs("ostree", false)
	if err != nil {
		return err
	}
	for name, c := range refs {
		if cur[name] == c {
			continue
		}
		if err := s.repo.SetRef(ostree.Refspec{Ref: name}, c); err != nil {
			return err
		}
	}
	return s.dropStaleRefs(refs)
}

const (
	fsImmutableFL = 0x00000010
)

// setImmutable sets or clears FS_IMMUTABLE_FL on a directory; filesystems
// without the flag (tmpfs) are tolerated.
func setImmutable(p string, on bool) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) {
			return nil
		}
		return err
	}
	nf := flags &^ fsImmutableFL
	if on {
		nf |= fsImmutableFL
	}
	if nf == flags {
		return nil
	}
	v := int(nf)
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, v); err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) {
			return nil
		}
		return err
	}
	return nil
}

func clearImmutable(p string) { _ = setImmutable(p, false) }
