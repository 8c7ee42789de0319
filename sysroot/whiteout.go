package sysroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/ostree"
)

const whiteoutPrefix = ".ostree-wh."

// findWhiteouts lists the paths (relative to the root) of the regular
// files named .ostree-wh.NAME in a commit's tree, walking its dirtrees
// (metadata only) with a few goroutines.
func findWhiteouts(r *ostree.Repo, root ostree.Checksum) ([]string, error) {
	var (
		mu   sync.Mutex
		out  []string
		wg   sync.WaitGroup
		ferr error
		sem  = make(chan struct{}, 4)
	)
	var walk func(tree ostree.Checksum, rel string)
	walk = func(tree ostree.Checksum, rel string) {
		defer wg.Done()
		dt, err := r.LoadDirTree(tree)
		if err != nil {
			mu.Lock()
			ferr = err
			mu.Unlock()
			return
		}
		for _, f := range dt.Files {
			if strings.HasPrefix(f.Name, whiteoutPrefix) && len(f.Name) > len(whiteoutPrefix) {
				mu.Lock()
				out = append(out, filepath.Join(rel, f.Name))
				mu.Unlock()
			}
		}
		for _, d := range dt.Dirs {
			wg.Add(1)
			sub, p := d.Tree, filepath.Join(rel, d.Name)
			select {
			case sem <- struct{}{}:
				go func() { defer func() { <-sem }(); walk(sub, p) }()
			default:
				walk(sub, p)
			}
		}
	}
	wg.Add(1)
	walk(root, "")
	wg.Wait()
	return out, ferr
}

// applyWhiteouts turns each checked-out .ostree-wh.NAME into the overlayfs
// whiteout NAME (a 0:0 character device with the file's permission bits,
// owner and xattrs), as ostree does in deployments.
func applyWhiteouts(dir string, paths []string) error {
	for _, rel := range paths {
		src := filepath.Join(dir, rel)
		dst := filepath.Join(filepath.Dir(src), strings.TrimPrefix(filepath.Base(rel), whiteoutPrefix))
		st, err := os.Lstat(src)
		if err != nil {
			return fmt.Errorf("whiteout %s: %w", rel, err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		sys := st.Sys().(*syscall.Stat_t)
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("whiteout %s: %w", rel, err)
		}
		if err := unix.Mknod(dst, unix.S_IFCHR|(sys.Mode&0o7777), int(unix.Mkdev(0, 0))); err != nil {
			return fmt.Errorf("whiteout %s: %w", rel, err)
		}
		if err := os.Lchown(dst, int(sys.Uid), int(sys.Gid)); err != nil {
			return fmt.Errorf("whiteout %s: %w", rel, err)
		}
		if err := unix.Chmod(dst, sys.Mode&0o7777); err != nil {
			return fmt.Errorf("whiteout %s: %w", rel, err)
		}
		if err := copyXattrsTo(src, dst); err != nil {
			return fmt.Errorf("whiteout %s: %w", rel, err)
		}
		if err := os.Remove(src); err != nil {
			return fmt.Errorf("whiteout %s: %w", rel, err)
		}
	}
	return nil
}

func copyXattrsTo(src, dst string) error {
	sz, err := unix.Llistxattr(src, nil)
	if errors.Is(err, unix.ENOTSUP) || sz == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	buf := make([]byte, sz)
	n, err := unix.Llistxattr(src, buf)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		vs, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return err
		}
		val := make([]byte, vs)
		if vs > 0 {
			if vs, err = unix.Lgetxattr(src, name, val); err != nil {
				return err
			}
		}
		if err := unix.Lsetxattr(dst, name, val[:vs], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return err
		}
	}
	return nil
}
