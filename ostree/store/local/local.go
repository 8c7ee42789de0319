// Package local is a store.Store over a directory on the local file
// system, such as another repository for pull-local or a file:// remote.
package local

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gostree/gostree/ostree/store"
)

// Store reads files under a directory.
type Store struct {
	dir string
}

var _ store.Store = (*Store)(nil)

// New returns a store reading files under dir.
func New(dir string) *Store { return &Store{dir: dir} }

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

func (s *Store) full(op, p string) (string, error) {
	c, err := store.CleanPath(p)
	if err != nil {
		var se *store.Error
		if errors.As(err, &se) {
			se.Op = op
		}
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(c)), nil
}

func classify(op, p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return store.NotFound(op, p)
	}
	// Interrupted or resource-exhausted reads may succeed again; the rest
	// (permissions, I/O errors) will not.
	retry := errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) ||
		errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
	return &store.Error{Op: op, Path: p, Retryable: retry, Err: err}
}

// Open opens a regular file.
func (s *Store) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	full, err := s.full("open", p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, classify("open", p, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, classify("open", p, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &store.Error{Op: "open", Path: p, Err: errors.New("not a regular file")}
	}
	return &file{f: f, ctx: ctx, p: p}, nil
}

type file struct {
	f   *os.File
	ctx context.Context
	p   string
}

func (f *file) Read(b []byte) (int, error) {
	if err := f.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := f.f.Read(b)
	if err != nil && err != io.EOF {
		err = classify("read", f.p, err)
	}
	return n, err
}

func (f *file) Close() error { return f.f.Close() }

// Stat returns the size and modification time of a regular file.
func (s *Store) Stat(ctx context.Context, p string) (store.Info, error) {
	if err := ctx.Err(); err != nil {
		return store.Info{}, err
	}
	full, err := s.full("stat", p)
	if err != nil {
		return store.Info{}, err
	}
	st, err := os.Stat(full)
	if err != nil {
		return store.Info{}, classify("stat", p, err)
	}
	if !st.Mode().IsRegular() {
		return store.Info{}, &store.Error{Op: "stat", Path: p, Err: errors.New("not a regular file")}
	}
	return store.Info{Size: st.Size(), ModTime: st.ModTime()}, nil
}
