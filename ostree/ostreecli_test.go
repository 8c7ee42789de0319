package ostree

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// requireOstree returns the path of the real ostree CLI for tests that
// compare against it. When it is not installed the test is skipped, unless
// CI=true, where a missing binary is a failure (CI must run these checks).
func requireOstree(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ostree")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/ostree"); serr == nil {
			p, err = "/usr/bin/ostree", nil
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the ostree CLI is required when CI=true: %v", err)
		}
		t.Skip("ostree CLI not installed")
	}
	return p
}

// haveOstree reports whether tests should compare with the real ostree:
// it is installed, or CI=true (where requireOstree then insists on it).
func haveOstree() bool {
	if os.Getenv("CI") == "true" {
		return true
	}
	if _, err := exec.LookPath("ostree"); err == nil {
		return true
	}
	_, err := os.Stat("/usr/bin/ostree")
	return err == nil
}

// runOstree runs the ostree CLI with args and returns its combined output,
// failing the test when it exits non-zero.
func runOstree(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ostreeCmd(t, args...)
	if err != nil {
		t.Fatalf("ostree %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ostreeCmd runs the ostree CLI with args and returns its combined output
// and exit error.
func ostreeCmd(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(requireOstree(t), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Small helpers shared by the tests of this package.

// mustChecksum parses a checksum literal.
func mustChecksum(t testing.TB, s string) Checksum {
	t.Helper()
	c, err := ParseChecksum(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fileExists reports whether p exists.
func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// mustReadFile reads a file or fails the test.
func mustReadFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyTree copies a directory with cp -a (keeping modes, owners, xattrs
// and hard links within it).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}
