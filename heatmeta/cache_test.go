package heatmeta

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCacheStoreCommitSemantics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	v1 := json.RawMessage(`{"a": 1, "b": [1, 2]}`)
	v1b := json.RawMessage(`{"b":[1,2],"a":1.0}`) // same value, other bytes
	v2 := json.RawMessage(`{"a": 2}`)

	// Nothing applied yet: changed.
	if ch, err := c.Store("heat", v1); err != nil || !ch {
		t.Fatalf("first store: %v %v", ch, err)
	}
	// Not committed (apply failed): still changed on the next poll.
	if ch, _ := c.Store("heat", v1); !ch {
		t.Fatal("uncommitted value reported unchanged")
	}
	if err := c.Commit("heat", v1); err != nil {
		t.Fatal(err)
	}
	if ch, _ := c.Store("heat", v1b); ch {
		t.Fatal("same JSON value in other bytes reported changed")
	}
	if ch, _ := c.Store("heat", v2); !ch {
		t.Fatal("new value reported unchanged")
	}
	orig, _ := c.Original("heat")
	last, _ := c.LastApplied("heat")
	latest, _ := c.Latest("heat")
	if !jsonEqual(orig, v1) || !jsonEqual(last, v1) || !jsonEqual(latest, v2) {
		t.Fatalf("orig %s last %s latest %s", orig, last, latest)
	}
	// Modes: secrets inside.
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("files: %v", ents)
	}
	for _, e := range ents {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", e.Name(), fi.Mode())
		}
	}
	if _, err := c.LastApplied("request"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key: %v", err)
	}
}

func TestCacheKeysAreEscaped(t *testing.T) {
	dir := t.TempDir()
	c, _ := OpenCache(dir)
	for _, k := range []string{"local/../../etc/passwd", "local/a b.json", "heat"} {
		if _, err := c.Store(k, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := c.Keys()
	if err != nil || len(keys) != 3 || keys[0] != "heat" || keys[1] != "local/../../etc/passwd" || keys[2] != "local/a b.json" {
		t.Fatalf("keys %q %v", keys, err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("directory created: %s", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "etc")); err == nil {
		t.Error("escaped the state directory")
	}
	if _, err := c.Store("", json.RawMessage(`{}`)); err == nil {
		t.Error("empty key accepted")
	}
}

func TestCacheCorruptLastIsChanged(t *testing.T) {
	dir := t.TempDir()
	c, _ := OpenCache(dir)
	c.Store("heat", json.RawMessage(`{"a":1}`))
	c.Commit("heat", json.RawMessage(`{"a":1}`))
	os.WriteFile(filepath.Join(dir, "heat.json.last"), []byte(`{"a":`), 0o600)
	// An unusable .last means "not applied": changed, so it is applied
	// (and committed) again rather than blocking the agent.
	if ch, err := c.Store("heat", json.RawMessage(`{"a":1}`)); err != nil || !ch {
		t.Fatalf("corrupt .last: changed=%v err=%v", ch, err)
	}
	if _, err := c.LastApplied("heat"); !errors.Is(err, errCorrupt) {
		t.Fatalf("LastApplied of a corrupt file: %v", err)
	}
}
