package ostree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/internal/keyfile"
)

// ErrNotFound is wrapped by errors about a missing object, ref or file.
var ErrNotFound = errors.New("not found")

// Repo is an OSTree repository on the local filesystem.
type Repo struct {
	path   string
	mode   RepoMode
	config *keyfile.File
	fsync  bool

	lockTimeout time.Duration
	lockMu      sync.Mutex
	lockFile    *os.File
	lockRO      bool // the repository is read-only to this process: no exclusive lock
	lockShared  int
	lockExcl    int
}

// InitOptions configures Init.
type InitOptions struct {
	CollectionID string
}

// Init creates a repository at path (which may exist and be empty) in the
// given mode, with ostree's layout. Initialising an existing repository of
// the same mode is a no-op, as with `ostree init`.
func Init(path string, mode RepoMode, opts InitOptions) (*Repo, error) {
	if _, err := os.Stat(filepath.Join(path, "config")); err == nil {
		r, err := Open(path)
		if err != nil {
			return nil, err
		}
		if r.mode != mode {
			return nil, fmt.Errorf("repository %s already exists with mode %s", path, r.mode)
		}
		return r, nil
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("creating repository: %w", err)
	}
	for _, d := range []string{"objects", "refs/heads", "refs/remotes", "refs/mirrors", "tmp/cache", "state", "extensions"} {
		if err := os.MkdirAll(filepath.Join(path, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating repository: %w", err)
		}
	}
	cfg := keyfile.New()
	cfg.Set("core", "repo_version", "1")
	cfg.Set("core", "mode", mode.String())
	if opts.CollectionID != "" {
		cfg.Set("core", "collection-id", opts.CollectionID)
	}
	if err := atomicfile.WriteFile(filepath.Join(path, "config"), cfg.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return Open(path)
}

// Open opens an existing repository.
func Open(path string) (*Repo, error) {
	data, err := os.ReadFile(filepath.Join(path, "config"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an ostree repository (no config file): %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("opening repository %s: %w", path, err)
	}
	cfg, err := keyfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("repository %s: config: %w", path, err)
	}
	if v := cfg.Get("core", "repo_version", ""); v != "1" {
		return nil, fmt.Errorf("repository %s: unsupported repo_version %q", path, v)
	}
	mode, err := ParseRepoMode(cfg.Get("core", "mode", "bare"))
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", path, err)
	}
	r := &Repo{path: path, mode: mode, config: cfg, fsync: true, lockTimeout: 30 * time.Second}
	if r.fsync, err = cfg.Bool("core", "fsync", true); err != nil {
		return nil, fmt.Errorf("repository %s: %w", path, err)
	}
	if n, err := cfg.Int("core", "lock-timeout-secs", 30); err != nil {
		return nil, fmt.Errorf("repository %s: %w", path, err)
	} else {
		r.lockTimeout = time.Duration(n) * time.Second
	}
	for _, d := range []string{"objects", "tmp", "refs/heads"} {
		if st, err := os.Stat(filepath.Join(path, d)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("repository %s: missing directory %s", path, d)
		}
	}
	return r, nil
}

// Path returns the repository directory.
func (r *Repo) Path() string { return r.path }

// Mode returns the storage mode.
func (r *Repo) Mode() RepoMode { return r.mode }

// Config returns the parsed config file. Use SetConfig to change it.
func (r *Repo) Config() *keyfile.File { return r.config }

// WriteConfig atomically rewrites the config file.
func (r *Repo) WriteConfig(cfg *keyfile.File) error {
	if err := atomicfile.WriteFile(filepath.Join(r.path, "config"), cfg.Bytes(), 0o644); err != nil {
		return err
	}
	r.config = cfg
	return nil
}

// SetFsync turns syncing of written objects on or off (off is for tests
// and throwaway repositories, as `ostree --no-fsync`... and core.fsync).
func (r *Repo) SetFsync(on bool) { r.fsync = on }

// LockKind is a repository lock kind.
type LockKind int

// Lock kinds: writers that add objects take a shared lock; operations that
// delete objects (prune) take an exclusive one.
const (
	LockShared LockKind = iota
	LockExclusive
)

// Lock takes the repository lock (flock on .lock), waiting at most the
// configured lock-timeout-secs. Locks are recursive within a Repo value.
// The returned function releases it.
func (r *Repo) Lock(ctx context.Context, kind LockKind) (func(), error) {
	r.lockMu.Lock()
	defer r.lockMu.Unlock()
	if r.lockFile == nil && !r.lockRO {
		f, err := os.OpenFile(filepath.Join(r.path, ".lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o640)
		if err != nil && kind == LockShared && isReadOnlyErr(err) {
			// A reader of a repository it cannot write (a read-only mount, another
			// user's repo): share an existing lock file opened read-only, as flock
			// allows, or go without one as ostree does for repos it cannot write.
			r.lockRO = true
			f, err = os.OpenFile(filepath.Join(r.path, ".lock"), os.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil && (errors.Is(err, fs.ErrNotExist) || isReadOnlyErr(err)) {
				f, err = nil, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("opening repository lock: %w", err)
		}
		r.lockFile = f
	}
	if r.lockRO && kind == LockExclusive {
		return nil, fmt.Errorf("locking repository %s for writing: it is read-only to this process", r.path)
	}
	if r.lockFile == nil {
		return func() {}, nil
	}
	want := unix.LOCK_SH
	if kind == LockExclusive || r.lockExcl > 0 {
		want = unix.LOCK_EX
	}
	have := 0
	if r.lockExcl > 0 {
		have = unix.LOCK_EX
	} else if r.lockShared > 0 {
		have = unix.LOCK_SH
	}
	if have != want && !(have == unix.LOCK_EX) {
		deadline := time.Now().Add(r.lockTimeout)
		for {
			err := unix.Flock(int(r.lockFile.Fd()), want|unix.LOCK_NB)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("locking repository: %w", err)
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("locking repository %s: timed out after %v: another process holds the lock", r.path, r.lockTimeout)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if kind == LockExclusive {
		r.lockExcl++
	} else {
		r.lockShared++
	}
	var once sync.Once
	return func() { once.Do(func() { r.unlock(kind) }) }, nil
}

func (r *Repo) unlock(kind LockKind) {
	r.lockMu.Lock()
	defer r.lockMu.Unlock()
	if kind == LockExclusive {
		r.lockExcl--
	} else {
		r.lockShared--
	}
	switch {
	case r.lockExcl > 0:
	case r.lockShared > 0:
		unix.Flock(int(r.lockFile.Fd()), unix.LOCK_SH) // downgrade
	default:
		unix.Flock(int(r.lockFile.Fd()), unix.LOCK_UN)
	}
}

// Close releases resources held by the repository.
func (r *Repo) Close() error {
	r.lockMu.Lock()
	defer r.lockMu.Unlock()
	if r.lockFile != nil {
		err := r.lockFile.Close()
		r.lockFile = nil
		return err
	}
	return nil
}

func (r *Repo) objectPath(n ObjectName) string {
	return filepath.Join(r.path, LoosePath(n, r.mode))
}

// isReadOnlyErr reports whether err says a file cannot be opened for writing.
func isReadOnlyErr(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}
