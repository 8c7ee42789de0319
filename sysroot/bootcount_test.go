package sysroot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bootedAs opens the sysroot as if deployment d were booted: RUNDIR has
// ostree-booted and the root directory is the deployment itself (same
// device and inode, which is how the booted deployment is detected).
func (e *crashEnv) bootedAs(d *Deployment) *Sysroot {
	e.t.Helper()
	if err := os.MkdirAll(e.runDir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.runDir, "ostree-booted"), nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
	s, err := Open(e.sysroot, Options{RunDir: e.runDir, RootDir: e.deployPathOf(d)})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *crashEnv) deployPathOf(d *Deployment) string {
	return filepath.Join(e.sysroot, "ostree/deploy", d.OSName, "deploy", d.Name())
}

// snapshot records every file name and content under boot/ (through the
// loader link) to prove that an operation changed nothing.
func snapshot(t *testing.T, sysroot string) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range []string{"boot/loader/entries", "boot/grub"} {
		for _, n := range sortedDir(t, filepath.Join(sysroot, dir)) {
			c, _ := os.ReadFile(filepath.Join(sysroot, dir, n))
			b.WriteString(dir + "/" + n + "\n" + string(c) + "\n")
		}
	}
	return b.String()
}

func setGrubEnv(t *testing.T, sysroot string, kv ...string) {
	t.Helper()
	env := &GrubEnv{}
	for i := 0; i < len(kv); i += 2 {
		env.Set(kv[i], kv[i+1])
	}
	if err := env.write(filepath.Join(sysroot, "boot/grub/grubenv")); err != nil {
		t.Fatal(err)
	}
}

func TestBlessBoot(t *testing.T) {
	ctx := context.Background()
	e := newGrubEnv(t)
	grub := filepath.Join(e.sysroot, "boot/grub")
	os.MkdirAll(grub, 0o755)
	if err := os.Symlink("../loader/grub.cfg", filepath.Join(grub, "grub.cfg")); err != nil {
		t.Fatal(err)
	}
	v1 := e.deployWith(DeployOptions{Revision: "v1"})
	v2 := e.deployWith(DeployOptions{Revision: "v2", BootCountingTries: 3})

	// Not booted: an error, nothing changed.
	s := e.open()
	err := s.BlessBoot(ctx)
	s.Close()
	if !errors.Is(err, ErrNotBooted) {
		t.Fatalf("BlessBoot on an unbooted sysroot: %v", err)
	}

	// Booted into v2 after GRUB used one try.
	id := "testos/" + v2.Name()
	setGrubEnv(t, e.sysroot, "saved_entry", "keep-me", grubEnvIDVar, id, grubEnvTriesVar, "2")
	s = e.bootedAs(v2)
	if err := s.BlessBoot(ctx); err != nil {
		t.Fatal(err)
	}
	if b := s.Booted(); b == nil || b.Entry.TriesLeft != -1 || b.Entry.FileName != "ostree-2-testos.conf" {
		t.Fatalf("booted entry after BlessBoot: %+v", b)
	}
	s.Close()
	if got := sortedDir(t, filepath.Join(e.sysroot, "boot/loader/entries")); strings.Join(got, " ") != "ostree-1-testos.conf ostree-2-testos.conf" {
		t.Fatalf("entries after BlessBoot: %v", got)
	}
	cfg, _ := os.ReadFile(filepath.Join(grub, "grub.cfg"))
	if strings.Contains(string(cfg), "save_env") {
		t.Fatalf("grub.cfg still counts after BlessBoot:\n%s", cfg)
	}
	checkGrub(t, "blessed", e.sysroot)
	env, err := readGrubEnv(filepath.Join(grub, "grubenv"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := env.Get(grubEnvIDVar); ok {
		t.Errorf("grubenv still counts: %v=%v", env.Names, env.Values)
	}
	if v, _ := env.Get("saved_entry"); v != "keep-me" {
		t.Errorf("BlessBoot dropped another grubenv variable")
	}
	// The real ostree reads the renamed entry.
	run(t, e.ostree, "admin", "status", "--sysroot="+e.sysroot)

	// Idempotent: a second call changes nothing.
	before := snapshot(t, e.sysroot)
	s = e.bootedAs(v2)
	if err := s.BlessBoot(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if after := snapshot(t, e.sysroot); after != before {
		t.Errorf("second BlessBoot changed boot/:\n%s\nvs\n%s", before, after)
	}

	// A crash after the rename left the grubenv counter: BlessBoot finishes.
	setGrubEnv(t, e.sysroot, grubEnvIDVar, id, grubEnvTriesVar, "1")
	s = e.bootedAs(v2)
	if err := s.BlessBoot(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if env, _ := readGrubEnv(filepath.Join(grub, "grubenv")); len(env.Names) != 0 {
		t.Errorf("grubenv counter left behind: %v", env.Names)
	}

	// Fallback: a counted v1 redeployed as default used all its tries and
	// GRUB booted v2. Blessing v2 must not reset v1's counter.
	s = e.bootedAs(v2)
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Deploy(ctx, DeployOptions{OSName: "testos", Revision: "v1", BootCountingTries: 2})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	v1b := r.Deployment
	setGrubEnv(t, e.sysroot, grubEnvIDVar, "testos/"+v1b.Name(), grubEnvTriesVar, "0")
	before = snapshot(t, e.sysroot)
	s = e.bootedAs(v2)
	if err := s.BlessBoot(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if after := snapshot(t, e.sysroot); after != before {
		t.Errorf("blessing the fallback deployment changed boot/:\n%s\nvs\n%s", before, after)
	}
	if !strings.Contains(before, "ostree-2-testos+2.conf") {
		t.Errorf("the counted default entry is missing:\n%s", before)
	}
	_ = v1

	// Without GRUB the entry is renamed all the same.
	run(t, e.ostree, "config", "--repo="+e.sysroot+"/ostree/repo", "set", "sysroot.bootloader", "none")
	s = e.bootedAs(v1b)
	if err := s.BlessBoot(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := sortedDir(t, filepath.Join(e.sysroot, "boot/loader/entries")); strings.Join(got, " ") != "ostree-1-testos.conf ostree-2-testos.conf" {
		t.Fatalf("entries after BlessBoot without GRUB: %v", got)
	}
}
