package sysroot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func testEntry(t *testing.T, name, content string) *BootEntry {
	t.Helper()
	e, err := ParseBootEntry(name, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// grubScriptCheck validates cfg with GRUB's own parser (grub-common).
func grubScriptCheck(t *testing.T, cfg []byte) {
	t.Helper()
	p, err := exec.LookPath("grub-script-check")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("grub-script-check is missing (Debian grub-common, scripts/deps.sh)")
		}
		t.Log("grub-script-check not installed (Debian grub-common): GRUB syntax not checked")
		return
	}
	f := filepath.Join(t.TempDir(), "grub.cfg")
	if err := os.WriteFile(f, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(p, f).CombinedOutput(); err != nil {
		t.Fatalf("grub-script-check rejects the generated grub.cfg: %v: %s\n%s", err, out, cfg)
	}
}

func TestGrubConfig(t *testing.T) {
	e0 := testEntry(t, "ostree-2-debian+3.conf", "title Debian GNU/Linux 12 (bookworm) 3 (ostree:0)\nversion 2\n"+
		"options root=LABEL=root rw quoted=\"a b\" it's ostree=/ostree/boot.1/debian/abc/0\n"+
		"linux /ostree/debian-abc/vmlinuz-6.1\ninitrd /ostree/debian-abc/initramfs-6.1.img\n")
	e1 := testEntry(t, "ostree-1-debian.conf", "title Debian (ostree:1)\nversion 1\noptions root=LABEL=root ostree=/ostree/boot.1/debian/def/0\n"+
		"linux /ostree/debian-def/vmlinuz-6.1\n")
	cfg := string(grubConfig([]grubItem{{e0, "debian/c3.0"}, {e1, "debian/c2.0"}}, ""))
	for _, want := range []string{
		"menuentry 'Debian GNU/Linux 12 (bookworm) 3 (ostree:0)' --id 'gostree-0' {\n" +
			"  linux '/ostree/debian-abc/vmlinuz-6.1' 'root=LABEL=root' 'rw' 'quoted=\"a b\"' 'it'\\''s' 'ostree=/ostree/boot.1/debian/abc/0'\n" +
			"  initrd '/ostree/debian-abc/initramfs-6.1.img'\n}\n",
		"menuentry 'Debian (ostree:1)' --id 'gostree-1' {\n  linux '/ostree/debian-def/vmlinuz-6.1' 'root=LABEL=root' 'ostree=/ostree/boot.1/debian/def/0'\n}\n",
		`load_env -f "${config_directory}/grubenv" gostree_boot_id gostree_tries_left`,
		`if [ "${gostree_boot_id}" != 'debian/c3.0' ]; then`,
		"  set gostree_tries_left=3\n",
		"  if [ \"${gostree_tries_left}\" = 3 ]; then\n    set gostree_tries_left=2\n",
		"  elif [ \"${gostree_tries_left}\" = 1 ]; then\n    set gostree_tries_left=0\n",
		"if [ \"${gostree_tries_left}\" = 0 ]; then\n  set default=1\n",
		"  save_env -f \"${config_directory}/grubenv\" gostree_boot_id gostree_tries_left\nfi\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Index(cfg, "'gostree-0'") > strings.Index(cfg, "'gostree-1'") {
		t.Error("entries are not in boot order")
	}
	grubScriptCheck(t, []byte(cfg))

	// No countdown when the default entry is not counted, or when there
	// is nothing to fall back to; the boot prefix goes before every path.
	for _, items := range [][]grubItem{{{e1, "x"}, {e0, "y"}}, {{e0, "y"}}} {
		cfg := string(grubConfig(items, "/boot"))
		if strings.Contains(cfg, "load_env") || strings.Contains(cfg, "save_env") {
			t.Errorf("unexpected countdown:\n%s", cfg)
		}
		if !strings.Contains(cfg, "linux '/boot/ostree/debian-") {
			t.Errorf("boot prefix missing:\n%s", cfg)
		}
		grubScriptCheck(t, []byte(cfg))
	}
	// A huge counter is bounded.
	big := testEntry(t, "ostree-2-debian+999999.conf", "title x\nlinux /k\n")
	cfg = string(grubConfig([]grubItem{{big, "a"}, {e1, "b"}}, ""))
	if n := strings.Count(cfg, "    set gostree_tries_left="); n != maxGrubTries+1 {
		t.Errorf("countdown of %d steps, want %d", n-1, maxGrubTries)
	}
	grubScriptCheck(t, []byte(cfg))
	// GRUB's terminal wraps at 80 columns: every message fits.
	for _, l := range strings.Split(cfg, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "echo ") && len(strings.TrimSpace(l)) > 80 {
			t.Errorf("message too long for GRUB's terminal: %s", l)
		}
	}
}

func TestGrubEnv(t *testing.T) {
	e := &GrubEnv{}
	e.Set("saved_entry", "gostree-0")
	e.Set(grubEnvIDVar, "debian/abc.0")
	e.Set("odd", "back\\slash\nnewline")
	b, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1024 || !bytes.HasPrefix(b, []byte("# GRUB Environment Block\nsaved_entry=gostree-0\n")) || b[1023] != '#' {
		t.Fatalf("bad block: %q", b)
	}
	back, err := ParseGrubEnv(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := back.Get("odd"); v != "back\\slash\nnewline" {
		t.Errorf("escaped value came back as %q", v)
	}
	if !back.Unset(grubEnvIDVar) || back.Unset(grubEnvIDVar) {
		t.Error("Unset should report a change exactly once")
	}
	// grub-editenv reads what we write, and we read what it writes.
	p, err := exec.LookPath("grub-editenv")
	if err != nil && os.Getenv("CI") == "true" {
		t.Fatal("grub-editenv is missing (Debian grub-common, scripts/deps.sh)")
	}
	if err == nil {
		f := filepath.Join(t.TempDir(), "grubenv")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(p, f, "list").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "gostree_boot_id=debian/abc.0\n") {
			t.Fatalf("grub-editenv list: %v: %s", err, out)
		}
		if out, err := exec.Command(p, f, "set", "gostree_tries_left=2").CombinedOutput(); err != nil {
			t.Fatalf("grub-editenv set: %v: %s", err, out)
		}
		g, err := readGrubEnv(f)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := g.Get(grubEnvTriesVar); !ok || v != "2" {
			t.Errorf("grub-editenv's variable read back as %q, %v", v, ok)
		}
	}
	// Bad input is refused with a clear error.
	if _, err := ParseGrubEnv([]byte("not an env block")); err == nil || !strings.Contains(err.Error(), "header") {
		t.Errorf("missing header: %v", err)
	}
	if _, err := ParseGrubEnv([]byte(grubEnvHeader + "novalue\n")); err == nil || !strings.Contains(err.Error(), "name=value") {
		t.Errorf("bad line: %v", err)
	}
	full := &GrubEnv{}
	full.Set("x", strings.Repeat("y", 1100))
	if _, err := full.Bytes(); err == nil {
		t.Error("an oversized block was accepted")
	}
}

func FuzzParseGrubEnv(f *testing.F) {
	f.Add([]byte(grubEnvHeader + "a=b\n#####"))
	f.Add([]byte(grubEnvHeader + "a=b\\\nc\nx=\\\\\n"))
	f.Add([]byte(grubEnvHeader))
	f.Add([]byte("# GRUB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseGrubEnv(b)
		if err != nil {
			return
		}
		out, err := e.Bytes()
		if err != nil {
			return // names or sizes a block cannot hold
		}
		back, err := ParseGrubEnv(out)
		if err != nil {
			t.Fatalf("re-parse of our own block: %v", err)
		}
		if fmt.Sprint(back.Names, back.Values) != fmt.Sprint(e.Names, e.Values) {
			t.Fatalf("round trip changed %v=%q to %v=%q", e.Names, e.Values, back.Names, back.Values)
		}
	})
}

var ostreeArgRE = regexp.MustCompile(`'ostree=(/ostree/boot\.[01]/[^/']+/[^/']+/[0-9]+)'`)

// grubTargets returns the ostree= paths GRUB would boot, reading
// boot/grub/grub.cfg as GRUB does (through the symlink).
func grubTargets(t *testing.T, sysroot string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sysroot, "boot/grub/grub.cfg"))
	if err != nil {
		t.Fatalf("reading boot/grub/grub.cfg: %v", err)
	}
	var out []string
	for _, m := range ostreeArgRE.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// liveTargets returns the ostree= paths of the live BLS entries, in boot order.
func liveTargets(t *testing.T, sysroot string) []string {
	t.Helper()
	ents, err := readEntries(filepath.Join(sysroot, "boot/loader/entries"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		for _, a := range splitKargs(e.Get("options")) {
			if v, ok := strings.CutPrefix(a, "ostree="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// checkGrub: what GRUB reads lists exactly the live entries, and each
// resolves to a complete deployment (merged /etc, origin).
func checkGrub(t *testing.T, label, sysroot string) {
	t.Helper()
	got, want := grubTargets(t, sysroot), liveTargets(t, sysroot)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: grub.cfg boots %v, the live entries are %v", label, got, want)
	}
	for _, p := range got {
		dir, err := filepath.EvalSymlinks(filepath.Join(sysroot, p))
		if err != nil {
			t.Fatalf("%s: grub.cfg names %s, which does not resolve: %v", label, p, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "etc/a.conf")); err != nil {
			t.Fatalf("%s: grub.cfg names %s, an incomplete deployment: %v", label, p, err)
		}
		if _, err := os.Stat(dir + ".origin"); err != nil {
			t.Fatalf("%s: grub.cfg names %s, a deployment without origin: %v", label, p, err)
		}
	}
}

func newGrubEnv(t *testing.T) *crashEnv {
	ost := requireRootAndOstree(t)
	base := t.TempDir()
	e := &crashEnv{t: t, ostree: ost}
	for v := 1; v <= 2; v++ {
		e.trees[v] = filepath.Join(base, fmt.Sprintf("tree%d", v))
		crashTree(t, e.trees[v], v, 10)
	}
	e.fresh(base, func() {})
	return e
}

func (e *crashEnv) deployWith(o DeployOptions) *Deployment {
	s := e.open()
	defer s.Close()
	o.OSName = "testos"
	r, err := s.Deploy(context.Background(), o)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Deployment
}

func TestGrubDeploy(t *testing.T) {
	e := newGrubEnv(t)
	boot := filepath.Join(e.sysroot, "boot")
	// An installer's regular grub.cfg: GRUB is detected (bootloader auto).
	if err := os.MkdirAll(filepath.Join(boot, "grub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(boot, "grub/grub.cfg"), []byte("# from the installer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.deployWith(DeployOptions{Revision: "v1"})
	if l, err := os.Readlink(filepath.Join(boot, "grub/grub.cfg")); err != nil || l != "../loader/grub.cfg" {
		t.Fatalf("boot/grub/grub.cfg: %q, %v; want a link to ../loader/grub.cfg", l, err)
	}
	checkGrub(t, "v1", e.sysroot)
	if _, err := os.Lstat(filepath.Join(boot, "grub/grubenv")); err == nil {
		t.Error("grubenv created without a boot counter")
	}
	v2 := e.deployWith(DeployOptions{Revision: "v2", BootCountingTries: 2})
	checkGrub(t, "v2", e.sysroot)
	cfg, _ := os.ReadFile(filepath.Join(boot, "grub/grub.cfg"))
	if !strings.Contains(string(cfg), fmt.Sprintf("set gostree_boot_id='testos/%s'", v2.Name())) ||
		!strings.Contains(string(cfg), "set gostree_tries_left=2\n") {
		t.Fatalf("no countdown for the counted default entry:\n%s", cfg)
	}
	grubScriptCheck(t, cfg)
	env, err := os.ReadFile(filepath.Join(boot, "grub/grubenv"))
	if err != nil || len(env) != 1024 {
		t.Fatalf("grubenv: %d bytes, %v", len(env), err)
	}
	// The real ostree still reads the sysroot.
	run(t, e.ostree, "admin", "status", "--sysroot="+e.sysroot)

	// sysroot.bootloader=none: BLS only, grub.cfg left alone.
	run(t, e.ostree, "config", "--repo="+e.sysroot+"/ostree/repo", "set", "sysroot.bootloader", "none")
	e.deployWith(DeployOptions{Revision: "v1"})
	if _, err := os.Lstat(filepath.Join(boot, "loader/grub.cfg")); err == nil {
		t.Error("bootloader=none still wrote grub.cfg")
	}

	// sysroot.bootloader=grub2 with no boot/grub yet: created.
	os.RemoveAll(filepath.Join(boot, "grub"))
	run(t, e.ostree, "config", "--repo="+e.sysroot+"/ostree/repo", "set", "sysroot.bootloader", "grub2")
	e.deployWith(DeployOptions{Revision: "v2"})
	checkGrub(t, "bootloader=grub2", e.sysroot)

	// An invalid value is an error naming the key, and nothing changes.
	run(t, e.ostree, "config", "--repo="+e.sysroot+"/ostree/repo", "set", "sysroot.bootloader", "lilo")
	live := liveTargets(t, e.sysroot)
	s := e.open()
	_, err = s.Deploy(context.Background(), DeployOptions{OSName: "testos", Revision: "v1"})
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "sysroot.bootloader") {
		t.Fatalf("bootloader=lilo: %v", err)
	}
	if fmt.Sprint(liveTargets(t, e.sysroot)) != fmt.Sprint(live) {
		t.Error("a failed deploy changed the live entries")
	}
}

// TestGrubCrashSafety kills a deploy at every crash point and checks what
// GRUB would read: always exactly the live entries, each a complete
// deployment, including while an installer's regular grub.cfg is replaced
// by the link and a deployment is removed by the cleanup.
func TestGrubCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash harness is not run in -short")
	}
	ost := requireRootAndOstree(t)
	base := t.TempDir()
	e := &crashEnv{t: t, ostree: ost}
	for v := 1; v <= 2; v++ {
		e.trees[v] = filepath.Join(base, fmt.Sprintf("tree%d", v))
		crashTree(t, e.trees[v], v, 20)
	}
	setup := func() {
		grub := filepath.Join(e.sysroot, "boot/grub")
		os.MkdirAll(grub, 0o755)
		os.Symlink("../loader/grub.cfg", filepath.Join(grub, "grub.cfg"))
		e.deploy("v1", false)
		e.deploy("v2", false)
		// Replace the link by a regular copy (as an installer would leave it):
		// it names v1.0, which the next deploy of v1 drops.
		b, err := os.ReadFile(filepath.Join(grub, "grub.cfg"))
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(grub, "grub.cfg"))
		if err := os.WriteFile(filepath.Join(grub, "grub.cfg"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	completed := false
	points := 0
	for k := 1; k <= 80 && !completed; k++ {
		e.fresh(base, setup)
		checkGrub(t, "before", e.sysroot)
		completed = e.helper("deploy", "v1", k, 0)
		label := fmt.Sprintf("killed at crash point %d", k)
		if completed {
			label = "completed"
		} else {
			points++
		}
		checkGrub(t, label, e.sysroot)
		if !e.helper("cleanup", "", 0, 0) {
			t.Fatalf("%s: cleanup was killed", label)
		}
		checkGrub(t, label+", after cleanup", e.sysroot)
		e.deploy("v2", false)
		checkGrub(t, label+", then deployed again", e.sysroot)
		if l, _ := os.Readlink(filepath.Join(e.sysroot, "boot/grub/grub.cfg")); l != "../loader/grub.cfg" {
			t.Fatalf("%s: boot/grub/grub.cfg is not the link after a deploy", label)
		}
		os.RemoveAll(filepath.Dir(e.sysroot))
	}
	if !completed || points < 5 {
		t.Fatalf("completed=%v after %d crash points", completed, points)
	}
	t.Logf("killed at each of %d crash points", points)
}

func sortedDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}
