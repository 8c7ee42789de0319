package sysroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/internal/keyfile"
	"github.com/gostree/gostree/ostree"
)

// ErrNotBooted is returned by operations that need a booted system.
var ErrNotBooted = errors.New("not currently booted into an OSTree system")

// Options configures where the sysroot looks for runtime state.
type Options struct {
	// RunDir replaces /run: RUNDIR/ostree-booted marks a booted system
	// and RUNDIR/ostree/staged-deployment holds the staged deployment.
	RunDir string
	// RootDir replaces / when detecting the booted deployment (same
	// device and inode as a deployment directory).
	RootDir string
	// AllowUnbootedStage lets Deploy stage on a sysroot that is not
	// booted (for tests and image builders; ostree refuses).
	AllowUnbootedStage bool
	// MutableDeployments skips the immutable attribute on deployment
	// directories (also set by OSTREE_SYSROOT_DEBUG=mutable-deployments).
	MutableDeployments bool
}

// Sysroot is an OSTree system root directory.
type Sysroot struct {
	path string
	opts Options
	repo *ostree.Repo
	lock *os.File

	// BootVersion and SubBootVersion are the current double-buffer
	// indices (boot/loader -> loader.B, ostree/boot.B -> boot.B.S).
	BootVersion, SubBootVersion int
	// Deployments in boot order; a staged deployment comes first.
	Deployments []*Deployment
	loaded      bool
}

// Deployment is one checked-out commit.
type Deployment struct {
	OSName     string
	Checksum   ostree.Checksum
	Serial     int
	BootCsum   string
	BootSerial int
	// Index is the position in the deployment list (0 = default).
	Index  int
	Origin *keyfile.File
	// Entry is the BLS entry (nil for a staged deployment).
	Entry *BootEntry
	// Kargs are the kernel arguments (the entry's options).
	Kargs   []string
	Version string // the commit's "version" metadata
	Staged  bool
	Booted  bool
	// staged deployment state
	stagedMerge *Deployment
	// kernel is set for a deployment made in this process.
	kernel *kernelLayout
}

// Name returns CSUM.SERIAL, the deployment directory name.
func (d *Deployment) Name() string { return fmt.Sprintf("%s.%d", d.Checksum, d.Serial) }

// Pinned reports whether the origin marks the deployment as pinned.
func (d *Deployment) Pinned() bool {
	if d.Origin == nil {
		return false
	}
	v, _ := d.Origin.Bool("libostree-transient", "pinned", false)
	return v
}

// Refspec returns the origin's refspec, or "".
func (d *Deployment) Refspec() string {
	if d.Origin == nil {
		return ""
	}
	return d.Origin.Get("origin", "refspec", "")
}

func (d *Deployment) same(o *Deployment) bool {
	return d != nil && o != nil && d.OSName == o.OSName && d.Checksum == o.Checksum && d.Serial == o.Serial
}

// Open opens the sysroot at path ("/" for the running system) and its
// repository. It does not take the lock or load the deployments.
func Open(path string, o Options) (*Sysroot, error) {
	if o.RunDir == "" {
		o.RunDir = "/run"
	}
	if o.RootDir == "" {
		o.RootDir = "/"
	}
	if strings.Contains(os.Getenv("OSTREE_SYSROOT_DEBUG"), "mutable-deployments") {
		o.MutableDeployments = true
	}
	s := &Sysroot{path: path, opts: o}
	st, err := os.Stat(filepath.Join(path, "ostree"))
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s is not an OSTree sysroot (no ostree/ directory; run `admin init-fs`)", path)
	}
	r, err := ostree.Open(filepath.Join(path, "ostree", "repo"))
	if err != nil {
		return nil, fmt.Errorf("sysroot %s: %w", path, err)
	}
	s.repo = r
	return s, nil
}

// Path returns the sysroot directory.
func (s *Sysroot) Path() string { return s.path }

// Repo returns the sysroot's repository (ostree/repo).
func (s *Sysroot) Repo() *ostree.Repo { return s.repo }

// Close releases the lock and the repository.
func (s *Sysroot) Close() error {
	s.Unlock()
	return s.repo.Close()
}

func (s *Sysroot) p(parts ...string) string {
	return filepath.Join(append([]string{s.path}, parts...)...)
}

// Lock takes the sysroot lock (ostree/lock, removed on release), waiting
// for other writers. Like libglnx (and so ostree) it is an exclusive OFD
// lock, falling back to flock where OFD locks are unsupported, so gostree
// and ostree exclude each other.
func (s *Sysroot) Lock() error {
	if s.lock != nil {
		return nil
	}
	p := s.p("ostree", "lock")
	for i := 0; i < 100; i++ {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("locking sysroot: %w", err)
		}
		if err := lockFile(f); err != nil {
			f.Close()
			return fmt.Errorf("locking sysroot: %w", err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			f.Close()
			return fmt.Errorf("locking sysroot: %w", err)
		}
		if st.Nlink == 0 {
			// Released (and unlinked) by its previous holder; retry.
			f.Close()
			continue
		}
		s.lock = f
		return nil
	}
	return errors.New("locking sysroot: lock file keeps disappearing")
}

// Unlock releases the sysroot lock.
func (s *Sysroot) Unlock() {
	if s.lock == nil {
		return
	}
	os.Remove(s.p("ostree", "lock"))
	s.lock.Close()
	s.lock = nil
}

var ostreeKargRE = regexp.MustCompile(`^/ostree/boot\.([01])/([^/]+)/([^/]+)/([0-9]+)$`)

func readVersionLink(p, prefix string) (int, bool, error) {
	t, err := os.Readlink(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	switch t {
	case prefix + "0":
		return 0, true, nil
	case prefix + "1":
		return 1, true, nil
	}
	return 0, false, fmt.Errorf("%s points to unexpected %q", p, t)
}

// Load reads the current state: boot and subboot versions, the BLS
// entries and their deployments, origins, the staged deployment and which
// deployment is booted.
func (s *Sysroot) Load() error {
	s.Deployments = nil
	bv, _, err := readVersionLink(s.p("boot", "loader"), "loader.")
	if err != nil {
		return fmt.Errorf("loading sysroot: %w", err)
	}
	s.BootVersion = bv
	sv, _, err := readVersionLink(s.p("ostree", fmt.Sprintf("boot.%d", bv)), fmt.Sprintf("boot.%d.", bv))
	if err != nil {
		return fmt.Errorf("loading sysroot: %w", err)
	}
	s.SubBootVersion = sv
	entries, err := readEntries(s.p("boot", fmt.Sprintf("loader.%d", bv), "entries"))
	if err != nil {
		return fmt.Errorf("loading sysroot: %w", err)
	}
	for _, e := range entries {
		d, err := s.deploymentFromEntry(e)
		if err != nil {
			return fmt.Errorf("loading sysroot: boot entry %s: %w", e.FileName, err)
		}
		s.Deployments = append(s.Deployments, d)
	}
	staged, err := s.readStaged()
	if err != nil {
		return fmt.Errorf("loading sysroot: %w", err)
	}
	if staged != nil {
		s.Deployments = append([]*Deployment{staged}, s.Deployments...)
	}
	for i, d := range s.Deployments {
		d.Index = i
		if c, err := s.repo.LoadCommit(d.Checksum); err == nil {
			d.Version = c.Version()
		}
	}
	if err := s.detectBooted(); err != nil {
		return fmt.Errorf("loading sysroot: %w", err)
	}
	s.loaded = true
	return nil
}

func (s *Sysroot) deploymentFromEntry(e *BootEntry) (*Deployment, error) {
	opts := splitKargs(e.Get("options"))
	var ostreeArg string
	for _, a := range opts {
		if strings.HasPrefix(a, "ostree=") {
			ostreeArg = strings.TrimPrefix(a, "ostree=")
		}
	}
	m := ostreeKargRE.FindStringSubmatch(ostreeArg)
	if m == nil {
		return nil, fmt.Errorf("no valid ostree= kernel argument in %q", e.Get("options"))
	}
	link := s.p("ostree", "boot."+m[1], m[2], m[3], m[4])
	target, err := os.Readlink(link)
	if err != nil {
		return nil, fmt.Errorf("bootlink: %w", err)
	}
	base := filepath.Base(target)
	os_ := filepath.Base(filepath.Dir(filepath.Dir(target)))
	d, err := parseDeployName(os_, base)
	if err != nil {
		return nil, err
	}
	d.BootCsum = m[3]
	d.BootSerial, _ = strconv.Atoi(m[4])
	d.Entry = e
	d.Kargs = opts
	if _, err := os.Lstat(s.deployPath(d)); err != nil {
		return nil, fmt.Errorf("deployment %s: %w", d.Name(), err)
	}
	if err := s.loadOrigin(d); err != nil {
		return nil, err
	}
	return d, nil
}

func parseDeployName(osname, name string) (*Deployment, error) {
	cs, serial, ok := strings.Cut(name, ".")
	if !ok {
		return nil, fmt.Errorf("invalid deployment name %q", name)
	}
	c, err := ostree.ParseChecksum(cs)
	if err != nil {
		return nil, fmt.Errorf("invalid deployment name %q: %w", name, err)
	}
	n, err := strconv.Atoi(serial)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("invalid deployment serial in %q", name)
	}
	return &Deployment{OSName: osname, Checksum: c, Serial: n}, nil
}

func (s *Sysroot) deployPath(d *Deployment) string {
	return s.p("ostree", "deploy", d.OSName, "deploy", d.Name())
}

// DeploymentPath returns the directory of a deployment.
func (s *Sysroot) DeploymentPath(d *Deployment) string { return s.deployPath(d) }

func (s *Sysroot) originPath(d *Deployment) string { return s.deployPath(d) + ".origin" }

func (s *Sysroot) loadOrigin(d *Deployment) error {
	b, err := os.ReadFile(s.originPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	kf, err := keyfile.Parse(b)
	if err != nil {
		return fmt.Errorf("origin of %s: %w", d.Name(), err)
	}
	d.Origin = kf
	return nil
}

func (s *Sysroot) detectBooted() error {
	if _, err := os.Stat(filepath.Join(s.opts.RunDir, "ostree-booted")); err != nil {
		return nil
	}
	var root unix.Stat_t
	if err := unix.Stat(s.opts.RootDir, &root); err != nil {
		return err
	}
	for _, d := range s.Deployments {
		var st unix.Stat_t
		if err := unix.Stat(s.deployPath(d), &st); err != nil {
			continue
		}
		if st.Dev == root.Dev && st.Ino == root.Ino {
			d.Booted = true
		}
	}
	return nil
}

// Booted returns the booted deployment, or nil.
func (s *Sysroot) Booted() *Deployment {
	for _, d := range s.Deployments {
		if d.Booted {
			return d
		}
	}
	return nil
}

// Staged returns the staged deployment, or nil.
func (s *Sysroot) Staged() *Deployment {
	if len(s.Deployments) > 0 && s.Deployments[0].Staged {
		return s.Deployments[0]
	}
	return nil
}

// nonStaged returns the deployments that have boot entries.
func (s *Sysroot) nonStaged() []*Deployment {
	var out []*Deployment
	for _, d := range s.Deployments {
		if !d.Staged {
			out = append(out, d)
		}
	}
	return out
}

// IsPending reports whether d comes before the booted deployment.
func (s *Sysroot) IsPending(d *Deployment) bool {
	b := s.Booted()
	return b != nil && !d.Staged && d.Index < b.Index && d.OSName == b.OSName
}

// IsRollback reports whether d comes after the booted deployment.
func (s *Sysroot) IsRollback(d *Deployment) bool {
	b := s.Booted()
	return b != nil && d.Index > b.Index && d.OSName == b.OSName
}

// MergeDeployment returns the deployment whose /etc and kernel arguments
// a new deployment of osname inherits: the booted one when booted into
// that stateroot, else the first of that stateroot (never a staged one).
func (s *Sysroot) MergeDeployment(osname string) *Deployment {
	if b := s.Booted(); b != nil && (osname == "" || b.OSName == osname) {
		return b
	}
	for _, d := range s.nonStaged() {
		if osname == "" || d.OSName == osname {
			return d
		}
	}
	return nil
}

// Stateroots lists the stateroot names under ostree/deploy.
func (s *Sysroot) Stateroots() ([]string, error) {
	ents, err := os.ReadDir(s.p("ostree", "deploy"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func lockFile(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	for {
		err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EINVAL) {
			return unix.Flock(int(f.Fd()), unix.LOCK_EX)
		}
		return err
	}
}
