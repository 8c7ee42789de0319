package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/ostree"
)

// WriteOptions controls WriteDeployments.
type WriteOptions struct {
	// NoCleanup skips Cleanup after the switch.
	NoCleanup bool
	// NoPrune skips pruning the repository during cleanup.
	NoPrune bool
}

// WriteResult describes a written deployment list.
type WriteResult struct {
	// BootconfigSwap is true when new BLS entries were written and
	// boot/loader switched; false for the cheap ostree/boot.B swap.
	BootconfigSwap bool
	BootVersion    int
	SubBootVersion int
	// CountChange is the change in the number of deployments.
	CountChange int
	Cleanup     *CleanupResult
}

// String renders the result as ostree admin prints it.
func (w *WriteResult) String() string {
	swap, head := "no", "Transaction complete"
	if w.BootconfigSwap {
		swap, head = "yes", "Bootloader updated"
	}
	return fmt.Sprintf("%s; bootconfig swap: %s; bootversion: boot.%d.%d, deployment count change: %d",
		head, swap, w.BootVersion, w.SubBootVersion, w.CountChange)
}

// prepared is what WriteDeployments needs to know per deployment.
type prepared struct {
	d      *Deployment
	kernel *kernelLayout
	tries  int // boot counter for a new entry; 0 = none
}

// WriteDeployments makes list the deployment list, atomically (see the
// package documentation). Every deployment must be complete on disk.
// Deployments that are no longer listed are removed by the cleanup that
// follows unless o.NoCleanup.
func (s *Sysroot) WriteDeployments(ctx context.Context, list []*Deployment, o WriteOptions) (*WriteResult, error) {
	return s.writeDeployments(ctx, list, nil, o)
}

func (s *Sysroot) writeDeployments(ctx context.Context, list []*Deployment, tries map[*Deployment]int, o WriteOptions) (*WriteResult, error) {
	if s.lock == nil {
		return nil, errors.New("writing deployments: sysroot is not locked")
	}
	if !s.loaded {
		if err := s.Load(); err != nil {
			return nil, err
		}
	}
	// The current list is what has boot entries (never the staged one,
	// even while it is being finalized).
	var old []*Deployment
	for _, d := range s.Deployments {
		if d.Entry != nil {
			old = append(old, d)
		}
	}
	booted := s.Booted()
	if booted != nil {
		found := false
		for _, d := range list {
			found = found || d.same(booted)
		}
		if !found {
			return nil, fmt.Errorf("attempting to remove booted deployment %s", booted.Name())
		}
	}
	seen := map[string]bool{}
	preps := make([]*prepared, len(list))
	for i, d := range list {
		if d.Staged {
			return nil, fmt.Errorf("writing deployments: %s is staged; finalize it first", d.Name())
		}
		key := d.OSName + "/" + d.Name()
		if seen[key] {
			return nil, fmt.Errorf("writing deployments: %s listed twice", d.Name())
		}
		seen[key] = true
		k := d.kernel
		if k == nil {
			var err error
			if k, err = findKernelInDeployment(s.deployPath(d)); err != nil {
				return nil, err
			}
			k.BootCsum = d.BootCsum
		}
		if d.BootCsum == "" {
			d.BootCsum = k.BootCsum
		}
		preps[i] = &prepared{d: d, kernel: k, tries: tries[d]}
	}
	// Boot serials: index among deployments with the same bootcsum.
	serials := map[string]int{}
	for _, p := range preps {
		p.d.BootSerial = serials[p.d.BootCsum]
		serials[p.d.BootCsum]++
	}
	res := &WriteResult{CountChange: len(list) - len(old)}
	swap := len(list) != len(old)
	for i := 0; !swap && i < len(list); i++ {
		a, b := old[i], list[i]
		if a.BootCsum != b.BootCsum || !equalStrings(withoutOstree(a.Kargs), withoutOstree(b.Kargs)) || a.Version != b.Version {
			swap = true
		}
	}
	for _, p := range preps {
		if p.tries > 0 {
			swap = true
		}
	}
	res.BootconfigSwap = swap
	var refs map[string]ostree.Checksum
	if !swap {
		nsub := 1 - s.SubBootVersion
		if err := s.buildBootlinks(s.BootVersion, nsub, preps); err != nil {
			return nil, err
		}
		crashPoint("bootlinks built")
		refs = s.deploymentRefs(s.BootVersion, nsub, preps)
		if err := s.addRefs(refs); err != nil {
			return nil, err
		}
		crashPoint("refs added")
		if err := s.syncAll(); err != nil {
			return nil, err
		}
		crashPoint("synced")
		if err := atomicfile.Symlink(fmt.Sprintf("boot.%d.%d", s.BootVersion, nsub), s.p("ostree", fmt.Sprintf("boot.%d", s.BootVersion))); err != nil {
			return nil, err
		}
		crashPoint("ostree/boot.B swapped")
		res.BootVersion, res.SubBootVersion = s.BootVersion, nsub
	} else {
		nb := 1 - s.BootVersion
		loaderDir := s.p("boot", fmt.Sprintf("loader.%d", nb))
		if err := os.RemoveAll(loaderDir); err != nil {
			return nil, fmt.Errorf("removing old %s: %w", loaderDir, err)
		}
		if err := os.MkdirAll(filepath.Join(loaderDir, "entries"), 0o755); err != nil {
			return nil, err
		}
		crashPoint("loader dir created")
		for _, p := range preps {
			if err := s.installKernel(p); err != nil {
				return nil, err
			}
		}
		crashPoint("kernels installed")
		nsub := 1
		if sv, ok, err := readVersionLink(s.p("ostree", fmt.Sprintf("boot.%d", nb)), fmt.Sprintf("boot.%d.", nb)); err == nil && ok {
			nsub = 1 - sv
		}
		multiOS := false
		for _, p := range preps {
			multiOS = multiOS || p.d.OSName != preps[0].d.OSName
		}
		entries := make([]*BootEntry, len(preps))
		for i, p := range preps {
			e := s.makeEntry(p, i, len(preps), nb, multiOS)
			if err := atomicfile.WriteFile(filepath.Join(loaderDir, "entries", e.FileName), e.Bytes(), 0o644); err != nil {
				return nil, err
			}
			entries[i] = e
			crashPoint("entry written")
		}
		// GRUB without blscfg: loader.B'/grub.cfg, live with the switch below (grub.go).
		if err := s.syncGrub(nb, preps, entries); err != nil {
			return nil, err
		}
		if err := s.buildBootlinks(nb, nsub, preps); err != nil {
			return nil, err
		}
		crashPoint("bootlinks built")
		if err := atomicfile.Symlink(fmt.Sprintf("boot.%d.%d", nb, nsub), s.p("ostree", fmt.Sprintf("boot.%d", nb))); err != nil {
			return nil, err
		}
		crashPoint("ostree/boot.B' swapped")
		if _, err := os.Lstat(s.p("boot", "boot")); errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(".", s.p("boot", "boot")); err != nil {
				return nil, err
			}
		}
		refs = s.deploymentRefs(nb, nsub, preps)
		if err := s.addRefs(refs); err != nil {
			return nil, err
		}
		crashPoint("refs added")
		if err := s.syncAll(); err != nil {
			return nil, err
		}
		crashPoint("synced")
		// The commit point.
		if err := atomicfile.Symlink(fmt.Sprintf("loader.%d", nb), s.p("boot", "loader")); err != nil {
			return nil, err
		}
		crashPoint("boot/loader swapped")
		if err := s.checkpointBoot(); err != nil {
			return nil, err
		}
		res.BootVersion, res.SubBootVersion = nb, nsub
	}
	if err := s.dropStaleRefs(refs); err != nil {
		return nil, err
	}
	crashPoint("stale refs dropped")
	// Bump the mtime of ostree/deploy so watchers notice, as ostree does.
	unix.UtimesNano(s.p("ostree", "deploy"), []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}})
	if err := s.Load(); err != nil {
		return nil, err
	}
	if !o.NoCleanup {
		cr, err := s.Cleanup(ctx, CleanupOptions{NoPrune: o.NoPrune})
		if err != nil {
			return res, err
		}
		res.Cleanup = cr
	}
	return res, nil
}

// syncAll is the durability barrier before a switch: syncfs(2) of the
// sysroot and /boot filesystems. A repository configured with
// core.fsync=false (throwaway test sysroots) skips it.
func (s *Sysroot) syncAll() error {
	if on, err := s.repo.Config().Bool("core", "fsync", true); err == nil && !on {
		return nil
	}
	for _, dir := range []string{s.path, s.p("boot")} {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("syncing %s: %w", dir, err)
		}
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("syncing %s: %w", dir, err)
		}
	}
	return nil
}

func (s *Sysroot) buildBootlinks(bv, sub int, preps []*prepared) error {
	dir := s.p("ostree", fmt.Sprintf("boot.%d.%d", bv, sub))
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing old %s: %w", dir, err)
	}
	for _, p := range preps {
		d := p.d
		parent := filepath.Join(dir, d.OSName, d.BootCsum)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		target := "../../../deploy/" + d.OSName + "/deploy/" + d.Name()
		if err := os.Symlink(target, filepath.Join(parent, strconv.Itoa(d.BootSerial))); err != nil {
			return fmt.Errorf("writing bootlink: %w", err)
		}
	}
	return nil
}

func (s *Sysroot) deploymentRefs(bv, sub int, preps []*prepared) map[string]ostree.Checksum {
	m := map[string]ostree.Checksum{}
	for i, p := range preps {
		m[fmt.Sprintf("ostree/%d/%d/%d", bv, sub, i)] = p.d.Checksum
	}
	return m
}

func (s *Sysroot) addRefs(refs map[string]ostree.Checksum) error {
	for name, c := range refs {
		if err := s.repo.SetRef(ostree.Refspec{Ref: name}, c); err != nil {
			return fmt.Errorf("writing deployment ref %s: %w", name, err)
		}
	}
	return nil
}

// dropStaleRefs removes ostree/B/S/I refs not in keep (all of them when
// keep is nil and regenerate is wanted by the caller).
func (s *Sysroot) dropStaleRefs(keep map[string]ostree.Checksum) error {
	cur, err := s.repo.ListRefs("ostree", false)
	if err != nil {
		return err
	}
	for name := range cur {
		if _, ok := keep[name]; ok {
			continue
		}
		parts := strings.Split(name, "/")
		if len(parts) != 4 {
			continue
		}
		if err := s.repo.SetRef(ostree.Refspec{Ref: name}, ostree.Checksum{}); err != nil && !errors.Is(err, ostree.ErrNotFound) {
			// Repo.SetRef removes emptied ref directories and may then
			// fail to sync the removed one; the ref itself is gone.
			if _, serr := os.Lstat(filepath.Join(s.repo.Path(), "refs", "heads", name)); !errors.Is(serr, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// installKernel puts the boot files into boot/ostree/OS-BOOTCSUM (hard
// link, or an atomic copy across filesystems).
func (s *Sysroot) installKernel(p *prepared) error {
	d := p.d
	dir := s.p("boot", "ostree", d.OSName+"-"+d.BootCsum)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("installing kernel: %w", err)
	}
	for _, f := range p.kernel.files() {
		dst := filepath.Join(dir, f[1])
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		src := filepath.Join(s.deployPath(d), f[0])
		err := os.Link(src, dst)
		if err == nil {
			continue
		}
		if !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EMLINK) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("installing kernel: %w", err)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("installing kernel: %w", err)
		}
		err = atomicfile.Write(dst, st.Mode().Perm(), func(w io.Writer) error {
			in, err := os.Open(src)
			if err != nil {
				return err
			}
			defer in.Close()
			_, err = io.Copy(w, in)
			return err
		})
		if err != nil {
			return fmt.Errorf("installing kernel: %w", err)
		}
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return err
	}
	return nil
}

func (s *Sysroot) makeEntry(p *prepared, index, n, bv int, multiOS bool) *BootEntry {
	d := p.d
	e := &BootEntry{TriesLeft: -1}
	title := osReleaseTitle(s.deployPath(d))
	if d.Version != "" && !strings.Contains(title, d.Version) {
		title += " " + d.Version
	}
	title += " (ostree"
	if multiOS {
		title += ":" + d.OSName
	}
	title += fmt.Sprintf(":%d)", index)
	version := n - index
	e.Set("title", title)
	e.Set("version", strconv.Itoa(version))
	bootPath := fmt.Sprintf("/ostree/boot.%d/%s/%s/%d", bv, d.OSName, d.BootCsum, d.BootSerial)
	kargs := d.Kargs
	if p.kernel.Initramfs == "" {
		// ostree sets init= before ostree=.
		kargs = kargsReplace(kargs, "init="+bootPath+"/usr/lib/ostree/ostree-prepare-root")
	}
	kargs = kargsReplace(kargs, "ostree="+bootPath)
	d.Kargs = kargs
	e.Set("options", strings.Join(kargs, " "))
	bootdir := "/ostree/" + d.OSName + "-" + d.BootCsum + "/"
	if p.kernel.Devicetree != "" {
		e.Set("devicetree", bootdir+p.kernel.DevicetreeName)
	}
	e.Set("linux", bootdir+p.kernel.KernelName)
	if p.kernel.Initramfs != "" {
		e.Set("initrd", bootdir+p.kernel.InitramfsName)
	}
	if d.Entry != nil {
		for i, k := range d.Entry.Keys {
			switch k {
			case "title", "version", "options", "devicetree", "linux", "initrd":
				continue
			}
			e.Keys = append(e.Keys, k)
			e.Values = append(e.Values, d.Entry.Values[i])
		}
	}
	counter := ""
	switch {
	case p.tries > 0:
		counter = fmt.Sprintf("+%d", p.tries)
		e.TriesLeft = p.tries
	case d.Entry != nil && d.Entry.TriesLeft >= 0:
		e.TriesLeft, e.TriesDone = d.Entry.TriesLeft, d.Entry.TriesDone
		counter = fmt.Sprintf("+%d", e.TriesLeft)
		if e.TriesDone > 0 {
			counter += fmt.Sprintf("-%d", e.TriesDone)
		}
	}
	e.FileName = fmt.Sprintf("ostree-%d-%s%s.conf", version, d.OSName, counter)
	return e
}

// osReleaseTitle returns PRETTY_NAME (else ID) of the deployment's
// os-release, as ostree titles its entries.
func osReleaseTitle(dir string) string {
	for _, f := range []string{"usr/lib/os-release", "etc/os-release"} {
		b, err := readFileNoFollowOutside(dir, f)
		if err != nil {
			continue
		}
		vals := parseOSRelease(string(b))
		if v := vals["PRETTY_NAME"]; v != "" {
			return v
		}
		if v := vals["ID"]; v != "" {
			return v
		}
		return "(Unknown)"
	}
	return "(Unknown)"
}

// readFileNoFollowOutside reads dir/rel, resolving a symlinked final
// component only inside dir.
func readFileNoFollowOutside(dir, rel string) ([]byte, error) {
	p := filepath.Join(dir, rel)
	for i := 0; i < 8; i++ {
		st, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return os.ReadFile(p)
		}
		t, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		if filepath.IsAbs(t) {
			p = filepath.Join(dir, t)
		} else {
			p = filepath.Join(filepath.Dir(p), t)
		}
		if !strings.HasPrefix(p, filepath.Clean(dir)+"/") {
			return nil, fmt.Errorf("%s points outside the deployment", rel)
		}
	}
	return nil, fmt.Errorf("%s: too many symlinks", rel)
}

func parseOSRelease(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
		}
		out[k] = v
	}
	return out
}
