package heatmeta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gostree/gostree/internal/atomicfile"
)

// Cache keeps os-collect-config's three copies of every document in a
// state directory (mode 0700, files 0600: metadata can hold credentials
// and signal URLs):
//
//	<key>.json       latest fetched value (written on every Store)
//	<key>.json.orig  the first value ever seen
//	<key>.json.last  the value last applied successfully (Commit)
//
// "Changed" means "differs from .last" (compared as JSON values), so an
// update that failed to apply stays changed and is retried; only Commit,
// called after success, makes it unchanged. Every write goes through
// internal/atomicfile.
type Cache struct {
	dir string
}

// errCorrupt marks a cache file that is not valid JSON.
var errCorrupt = errors.New("not valid JSON")

// OpenCache creates dir (0700) if needed.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("metadata cache: %w", err)
	}
	return &Cache{dir: dir}, nil
}

// Dir is the state directory.
func (c *Cache) Dir() string { return c.dir }

// keyFile maps a key to its file name: keys are escaped so that "/" and
// anything odd in a local file name cannot leave the directory.
func keyFile(key string) (string, error) {
	if key == "" {
		return "", errors.New("empty cache key")
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String() + ".json", nil
}

func (c *Cache) path(key, suffix string) (string, error) {
	f, err := keyFile(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(c.dir, f+suffix), nil
}

// Store writes raw as the latest value of key (and as the original the
// first time) and reports whether it differs from the last applied value.
func (c *Cache) Store(key string, raw json.RawMessage) (changed bool, err error) {
	latest, err := c.path(key, "")
	if err != nil {
		return false, err
	}
	if err := atomicfile.WriteFile(latest, raw, 0o600); err != nil {
		return false, fmt.Errorf("metadata cache: %w", err)
	}
	orig := latest + ".orig"
	if _, err := os.Lstat(orig); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.WriteFile(orig, raw, 0o600); err != nil {
			return false, fmt.Errorf("metadata cache: %w", err)
		}
	}
	return c.Changed(key, raw)
}

// Changed reports whether raw differs from the last applied value of key
// (true when nothing was applied yet or the copy is unreadable).
func (c *Cache) Changed(key string, raw json.RawMessage) (bool, error) {
	last, err := c.LastApplied(key)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errCorrupt) {
		return true, nil // nothing (usable) applied: apply again
	}
	if err != nil {
		return false, err
	}
	return !jsonEqual(last, raw), nil
}

// Commit records raw as the last successfully applied value of key. Pass
// exactly the value that was applied (not whatever is latest now).
func (c *Cache) Commit(key string, raw json.RawMessage) error {
	p, err := c.path(key, ".last")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, raw, 0o600); err != nil {
		return fmt.Errorf("metadata cache: %w", err)
	}
	return nil
}

// Latest returns the latest stored value (fs.ErrNotExist if none).
func (c *Cache) Latest(key string) (json.RawMessage, error) { return c.read(key, "") }

// Original returns the first value ever stored.
func (c *Cache) Original(key string) (json.RawMessage, error) { return c.read(key, ".orig") }

// LastApplied returns the value last committed.
func (c *Cache) LastApplied(key string) (json.RawMessage, error) { return c.read(key, ".last") }

func (c *Cache) read(key, suffix string) (json.RawMessage, error) {
	p, err := c.path(key, suffix)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("metadata cache %s: %w", p, errCorrupt)
	}
	return b, nil
}

// Keys lists the keys with a latest value, sorted.
func (c *Cache) Keys() ([]string, error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("metadata cache: %w", err)
	}
	var keys []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		k, err := url.PathUnescape(strings.TrimSuffix(n, ".json"))
		if err != nil {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}
