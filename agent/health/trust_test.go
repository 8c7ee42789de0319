package health

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnsafeScriptsRefused(t *testing.T) {
	req, want := checkDirs(t)
	script(t, req, "10-world", `exit 0`)
	os.Chmod(filepath.Join(req, "10-world"), 0o757)
	script(t, req, "20-fine", `exit 0`)
	// A link to a world-writable file elsewhere is refused as well.
	elsewhere := filepath.Join(t.TempDir(), "target")
	os.WriteFile(elsewhere, []byte("#!/bin/sh\nexit 0\n"), 0o777)
	os.Chmod(elsewhere, 0o777)
	os.Symlink(elsewhere, filepath.Join(req, "30-link"))
	// A world-writable wanted.d is refused as a whole.
	script(t, want, "10-w", `exit 0`)
	os.Chmod(want, 0o777)

	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if err != nil {
		t.Fatal(err)
	}
	w := find(t, r, "required.d/10-world")
	if w.OK || !w.Required || w.Err != "refused: "+filepath.Join(req, "10-world")+" is world-writable (mode -rwxr-xrwx)" {
		t.Errorf("world-writable script: %+v", w)
	}
	if c := find(t, r, "required.d/20-fine"); !c.OK {
		t.Errorf("safe script: %+v", c)
	}
	if c := find(t, r, "required.d/30-link"); c.OK || !strings.Contains(c.Err, elsewhere+" is world-writable") {
		t.Errorf("link to a world-writable script: %+v", c)
	}
	d := find(t, r, "wanted.d")
	if d.OK || d.Required || d.Err != "refusing to run the checks in "+want+": "+want+" is world-writable (mode drwxrwxrwx)" {
		t.Errorf("world-writable directory: %+v", d)
	}
	if r.OK {
		t.Error("report OK with a refused required script")
	}

	// The same for the required directory.
	os.Chmod(want, 0o755)
	os.Chmod(req, 0o777)
	r, err = Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if err != nil {
		t.Fatal(err)
	}
	if d := find(t, r, "required.d"); d.OK || !d.Required || !strings.Contains(d.Err, "world-writable") || r.OK {
		t.Errorf("world-writable required.d: %+v", d)
	}
	if len(r.Checks) != 2 { // required.d refused, wanted.d/10-w ran
		t.Errorf("checks: %v", names(r.Checks))
	}
}

func TestStickyParentAccepted(t *testing.T) {
	parent := t.TempDir()
	os.Chmod(parent, os.ModeSticky|0o777) // like /tmp
	req := filepath.Join(parent, "required.d")
	script(t, req, "10-ok", `exit 0`)
	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: filepath.Join(parent, "none")})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || len(r.Checks) != 1 {
		t.Errorf("%+v", r)
	}
	// …but not as the check directory itself.
	os.Chmod(req, os.ModeSticky|0o777)
	r, _ = Run(context.Background(), Config{RequiredDir: req, WantedDir: filepath.Join(parent, "none")})
	if r.OK || len(r.Checks) != 1 || !strings.Contains(r.Checks[0].Err, "world-writable") {
		t.Errorf("sticky check directory: %+v", r)
	}
	// A world-writable directory above without the sticky bit is refused.
	os.Chmod(req, 0o755)
	os.Chmod(parent, 0o777)
	r, _ = Run(context.Background(), Config{RequiredDir: req, WantedDir: filepath.Join(parent, "none")})
	if r.OK || len(r.Checks) != 1 || !strings.Contains(r.Checks[0].Err, parent+" is world-writable") {
		t.Errorf("world-writable parent: %+v", r)
	}
}

func TestForeignOwnerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	req, want := checkDirs(t)
	p := script(t, req, "10-nobody", `exit 0`)
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	g := script(t, req, "20-group", `exit 0`)
	os.Chown(g, 0, 65534)
	os.Chmod(g, 0o775)
	r0 := script(t, req, "30-rootgroup", `exit 0`)
	os.Chmod(r0, 0o775) // group-writable, but the group is root: accepted
	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if err != nil {
		t.Fatal(err)
	}
	if c := find(t, r, "required.d/10-nobody"); c.OK || c.Err != "refused: "+p+" is owned by uid 65534, not by root" {
		t.Errorf("%+v", c)
	}
	if c := find(t, r, "required.d/20-group"); c.OK || c.Err != "refused: "+g+" is writable by group 65534 (mode -rwxrwxr-x)" {
		t.Errorf("%+v", c)
	}
	if c := find(t, r, "required.d/30-rootgroup"); !c.OK {
		t.Errorf("%+v", c)
	}
	os.Chown(want, 65534, 0)
	script(t, want, "10-w", `exit 0`)
	r, _ = Run(context.Background(), Config{RequiredDir: req, WantedDir: want})
	if c := find(t, r, "wanted.d"); c.OK || !strings.Contains(c.Err, "owned by uid 65534") {
		t.Errorf("%+v", c)
	}
}
