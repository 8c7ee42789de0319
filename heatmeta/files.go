package heatmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Default paths, as os-collect-config.
const (
	DefaultHeatLocalPath = "/var/lib/heat-cfntools/cfn-init-data"
	DefaultLocalDir      = "/var/lib/os-collect-config/local-data"
)

// HeatLocalSource ("heat_local") reads the JSON files Heat's cloud-init
// part handler wrote at first boot from the cfn-init-data part of user
// data: the bootstrap, holding the first os-collect-config transport
// settings. Several files are shallow-merged in order (later keys win).
type HeatLocalSource struct {
	Paths []string // default DefaultHeatLocalPath
}

var _ Source = (*HeatLocalSource)(nil)

// Fetch reads the files. No file at all is ErrNotConfigured; a file that
// is not a JSON object is an error naming it.
func (s *HeatLocalSource) Fetch(ctx context.Context) (Metadata, error) {
	paths := s.Paths
	if len(paths) == 0 {
		paths = []string{DefaultHeatLocalPath}
	}
	merged := map[string]json.RawMessage{}
	found := false
	for _, p := range paths {
		b, err := readFileLimited(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Metadata{}, &Error{Op: "heat_local", Err: err}
		}
		obj, err := parseObject(b)
		if err != nil {
			return Metadata{}, &Error{Op: "heat_local", Err: fmt.Errorf("%s: %w", p, err)}
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(obj, &m); err != nil {
			return Metadata{}, &Error{Op: "heat_local", Err: fmt.Errorf("%s: %w", p, err)}
		}
		for k, v := range m {
			merged[k] = v
		}
		found = true
	}
	if !found {
		return Metadata{}, &Error{Op: "heat_local", Err: fmt.Errorf("none of %s exists: %w", strings.Join(paths, ", "), ErrNotConfigured)}
	}
	raw, err := marshalJSON(merged)
	if err != nil {
		return Metadata{}, &Error{Op: "heat_local", Err: err}
	}
	return Metadata{Docs: []Doc{{Key: "heat_local", Raw: raw}}}, nil
}

func readFileLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readLimited(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return b, nil
}

// LocalSource ("local") reads every non-hidden regular file of the
// directories as its own JSON document, keyed "local/<file name>", sorted
// by name bytewise. For operator overrides, so, as os-collect-config,
// it refuses a directory owned by another user or writable by others,
// and a file writable by others.
type LocalSource struct {
	Dirs []string // default DefaultLocalDir
}

var _ Source = (*LocalSource)(nil)

// Fetch reads the directories. None existing is ErrNotConfigured.
func (s *LocalSource) Fetch(ctx context.Context) (Metadata, error) {
	dirs := s.Dirs
	if len(dirs) == 0 {
		dirs = []string{DefaultLocalDir}
	}
	var docs []Doc
	found := false
	seen := map[string]string{}
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Metadata{}, &Error{Op: "local", Err: err}
		}
		if err := checkOwner(dir, st, true); err != nil {
			return Metadata{}, &Error{Op: "local", Err: err}
		}
		found = true
		ents, err := os.ReadDir(dir)
		if err != nil {
			return Metadata{}, &Error{Op: "local", Err: err}
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			p := filepath.Join(dir, name)
			fi, err := os.Stat(p)
			if err != nil {
				return Metadata{}, &Error{Op: "local", Err: err}
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			if err := checkOwner(p, fi, false); err != nil {
				return Metadata{}, &Error{Op: "local", Err: err}
			}
			b, err := readFileLimited(p)
			if err != nil {
				return Metadata{}, &Error{Op: "local", Err: err}
			}
			obj, err := parseObject(b)
			if err != nil {
				return Metadata{}, &Error{Op: "local", Err: fmt.Errorf("%s: %w", p, err)}
			}
			if prev, dup := seen[name]; dup {
				return Metadata{}, &Error{Op: "local", Err: fmt.Errorf("%s and %s have the same name", prev, p)}
			}
			seen[name] = p
			docs = append(docs, Doc{Key: "local/" + name, Raw: obj})
		}
	}
	if !found {
		return Metadata{}, &Error{Op: "local", Err: fmt.Errorf("none of %s exists: %w", strings.Join(dirs, ", "), ErrNotConfigured)}
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].Key < docs[j].Key })
	return Metadata{Docs: docs}, nil
}

// checkOwner refuses paths others could have written.
func checkOwner(p string, fi fs.FileInfo, isDir bool) error {
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%s is writable by others: refusing it", p)
	}
	if isDir {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
			return fmt.Errorf("%s is owned by uid %d, not by us (uid %d): refusing it", p, st.Uid, os.Getuid())
		}
	}
	return nil
}
