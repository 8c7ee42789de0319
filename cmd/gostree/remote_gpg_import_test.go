package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gostreeStdin runs the CLI with stdin replaced by data.
func gostreeStdin(t *testing.T, data []byte, args ...string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(data); w.Close() }()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old; r.Close() }()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("gostree %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

func TestRemoteGPGImport(t *testing.T) {
	home, fpr1 := testGPGHome(t, "One <one@example.invalid>")
	gpgRun(t, home, "--quick-gen-key", "Two <two@example.invalid>", "ed25519", "sign", "never")
	all := []byte(gpgRun(t, home, "--armor", "--export"))
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.asc")
	os.WriteFile(keys, all, 0o644)
	repo := filepath.Join(dir, "repo")
	gostree(t, "--repo="+repo, "init", "--mode=archive")
	gostree(t, "--repo="+repo, "remote", "add", "origin", "http://127.0.0.1:1/repo")
	kr := filepath.Join(repo, "origin.trustedkeys.gpg")

	// One key selected by ID from a keyring file.
	if out := gostree(t, "--repo="+repo, "remote", "gpg-import", "origin", "--keyring="+keys, fpr1); !strings.Contains(out, "Imported 1 GPG key ") {
		t.Fatalf("import by ID: %s", out)
	}
	listed := gpgRun(t, home, "--with-colons", "--show-keys", kr)
	if n := strings.Count("\n"+listed, "\npub:"); n != 1 || !strings.Contains(listed, fpr1) {
		t.Fatalf("keyring after the first import:\n%s", listed)
	}
	// All keys from stdin: merged with what is there, no duplicates.
	if out := gostreeStdin(t, all, "--repo="+repo, "remote", "gpg-import", "origin", "--stdin"); !strings.Contains(out, "Imported 2 GPG keys") {
		t.Fatalf("import from stdin: %s", out)
	}
	gostreeStdin(t, all, "--repo="+repo, "remote", "gpg-import", "origin", "--stdin")
	listed = gpgRun(t, home, "--with-colons", "--show-keys", kr)
	if n := strings.Count("\n"+listed, "\npub:"); n != 2 {
		t.Fatalf("%d keys after importing twice:\n%s", n, listed)
	}
	// Errors: unknown remote, unknown key ID, garbage keyring.
	if msg := gostreeFails(t, "--repo="+repo, "remote", "gpg-import", "nosuch", "--keyring="+keys); !strings.Contains(msg, "nosuch") {
		t.Fatalf("unknown remote: %s", msg)
	}
	if msg := gostreeFails(t, "--repo="+repo, "remote", "gpg-import", "origin", "--keyring="+keys, "DEADBEEFDEADBEEF"); !strings.Contains(msg, "DEADBEEFDEADBEEF") {
		t.Fatalf("unknown key: %s", msg)
	}
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not a keyring\n"), 0o644)
	before, _ := os.ReadFile(kr)
	if msg := gostreeFails(t, "--repo="+repo, "remote", "gpg-import", "origin", "--keyring="+garbage); !strings.Contains(msg, garbage) {
		t.Fatalf("garbage keyring: %s", msg)
	}
	if after, _ := os.ReadFile(kr); !bytes.Equal(before, after) {
		t.Fatal("a failed import changed the keyring")
	}
}
