package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Store reads files of a repository by relative path ("objects/ab/cd….commit").
type Store interface {
	// Open returns the content of the file at path. The reader may fail
	// mid-way (a broken transfer that could not be resumed); callers must
	// check the error of every Read and Close it.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	// Stat returns the size and modification time of the file at path.
	Stat(ctx context.Context, path string) (Info, error)
}

// Info describes a file of a store.
type Info struct {
	// Size in bytes, or -1 when the store cannot tell.
	Size int64
	// ModTime is the modification time, zero when unknown.
	ModTime time.Time
}

// Error is a failed store operation.
type Error struct {
	Op   string // "open", "stat", "read"
	Path string
	// Status is the HTTP status code for HTTP stores, 0 otherwise.
	Status int
	// Retryable says the same request may succeed later (connection
	// reset, server overloaded, stalled transfer).
	Retryable bool
	Err       error
}

func (e *Error) Error() string {
	s := e.Op + " " + e.Path
	if e.Status != 0 {
		s += fmt.Sprintf(": server returned HTTP %d", e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is a transient store failure.
func IsRetryable(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Retryable
}

// NotFound returns the error for a missing file.
func NotFound(op, p string) error {
	return &Error{Op: op, Path: p, Err: fs.ErrNotExist}
}

// CleanPath checks that p is a relative slash-separated path that stays
// inside the store (no "..", no absolute path, no empty element) and
// returns it cleaned.
func CleanPath(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || strings.ContainsRune(p, '\\') {
		return "", &Error{Op: "open", Path: p, Err: errors.New("invalid path")}
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return "", &Error{Op: "open", Path: p, Err: errors.New("invalid path")}
		}
	}
	return path.Clean(p), nil
}
