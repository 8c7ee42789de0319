package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/sysroot"
)

func statusJSONOf(t *testing.T, sr string, extra ...string) statusJSON {
	t.Helper()
	var st statusJSON
	out := gostree(t, append([]string{"admin", "status", "--json", "--sysroot=" + sr}, extra...)...)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

func deployedRefspecs(st statusJSON) string {
	var l []string
	for _, d := range st.Deployments {
		l = append(l, d.Refspec)
	}
	return strings.Join(l, ",")
}

// TestAdminBootedRollbackPin marks a deployment booted (run dir with
// ostree-booted, root dir = the deployment) and checks status markers,
// rollback and that the booted deployment is never removed.
func TestAdminBootedRollbackPin(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	sr := newVectorSysroot(t, "gostree", trees)
	admin(t, "gostree", sr, "deploy", "--os=testos", "--karg=root=/dev/vda", "v1")
	admin(t, "gostree", sr, "deploy", "--os=testos", "v2")
	// Not booted: rollback moves index 1 to the top.
	out := admin(t, "gostree", sr, "rollback")
	if !strings.Contains(out, "bootconfig swap: yes") {
		t.Errorf("rollback output: %s", out)
	}
	if got := deployedRefspecs(statusJSONOf(t, sr)); got != "v1,v2" {
		t.Fatalf("after rollback: %s", got)
	}
	if a, b := admin(t, "ostree", sr, "status"), admin(t, "gostree", sr, "status"); a != b {
		t.Errorf("status after rollback differs:\n%s\n%s", a, b)
	}
	// Boot v1 (index 0), then deploy v3: v3 is pending, v1 booted, v2 rollback.
	run := t.TempDir()
	writeFile(t, filepath.Join(run, "ostree-booted"), "", 0o644)
	st := statusJSONOf(t, sr)
	booted := st.Deployments[0].Deployment
	flags := []string{"--run-dir=" + run, "--root-dir=" + booted}
	gostree(t, append([]string{"admin", "deploy", "--sysroot=" + sr, "--retain-rollback", "v3"}, flags...)...)
	st = statusJSONOf(t, sr, flags...)
	if got := deployedRefspecs(st); got != "v3,v1,v2" {
		t.Fatalf("after deploy while booted: %s", got)
	}
	if !st.Deployments[0].Pending || !st.Deployments[1].Booted || !st.Deployments[2].Rollback {
		t.Errorf("markers: %+v", st.Deployments)
	}
	text := gostree(t, append([]string{"admin", "status", "--sysroot=" + sr}, flags...)...)
	for _, want := range []string{"  testos " + "", " (pending)\n", "* testos ", " (rollback)\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	// The booted deployment cannot be undeployed.
	if msg := gostreeFails(t, append([]string{"admin", "undeploy", "--sysroot=" + sr, "1"}, flags...)...); !strings.Contains(msg, "booted") {
		t.Errorf("undeploy booted: %s", msg)
	}
	// Booted with a pending deployment: rollback makes the booted one the default.
	gostree(t, append([]string{"admin", "rollback", "--sysroot=" + sr}, flags...)...)
	if got := deployedRefspecs(statusJSONOf(t, sr, flags...)); got != "v1,v3,v2" {
		t.Fatalf("after booted rollback: %s", got)
	}
	// Now no pending: rollback goes to the deployment after the booted one.
	gostree(t, append([]string{"admin", "rollback", "--sysroot=" + sr}, flags...)...)
	if got := deployedRefspecs(statusJSONOf(t, sr, flags...)); got != "v3,v1,v2" {
		t.Fatalf("after second rollback: %s", got)
	}
	// A plain deploy while booted keeps the booted (merge) deployment and
	// drops the rest, as ostree.
	gostree(t, append([]string{"admin", "deploy", "--sysroot=" + sr, "v2"}, flags...)...)
	if got := deployedRefspecs(statusJSONOf(t, sr, flags...)); got != "v2,v1" {
		t.Fatalf("after deploy while booted: %s", got)
	}
	// Pins: invalid index, pin, ostree sees it, unpin.
	if msg := gostreeFails(t, "admin", "pin", "--sysroot="+sr, "7"); !strings.Contains(msg, "invalid deployment index 7") {
		t.Errorf("pin 7: %s", msg)
	}
	gostree(t, "admin", "pin", "--sysroot="+sr, "1")
	if !strings.Contains(admin(t, "ostree", sr, "status"), "Pinned: yes") {
		t.Error("ostree does not see the pin")
	}
}

// TestAdminStagedFinalize stages a deployment, edits /etc afterwards and
// finalizes: the late edit is in the new /etc, and the finalized sysroot
// is what ostree reads. Also boot counting.
func TestAdminStagedFinalize(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	sr := newVectorSysroot(t, "gostree", trees)
	run := t.TempDir()
	admin(t, "gostree", sr, "deploy", "--os=testos", "--karg=root=/dev/vda", "v1")
	// Staging needs a booted system unless explicitly allowed.
	if msg := gostreeFails(t, "admin", "deploy", "--sysroot="+sr, "--run-dir="+run, "--stage", "v2"); !strings.Contains(msg, "not currently booted") {
		t.Errorf("unbooted stage: %s", msg)
	}
	before := snapshot(t, sr)
	flags := []string{"--sysroot=" + sr, "--run-dir=" + run, "--allow-unbooted-stage"}
	gostree(t, append([]string{"admin", "deploy", "--stage", "--boot-counting=3", "v2"}, flags...)...)
	if _, err := os.Stat(filepath.Join(run, "ostree/staged-deployment")); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, sr)
	if before.files["boot/loader/entries/ostree-1-testos.conf"] != after.files["boot/loader/entries/ostree-1-testos.conf"] {
		t.Error("staging changed the boot entries")
	}
	st := statusJSONOf(t, sr, "--run-dir="+run)
	if len(st.Deployments) != 2 || !st.Deployments[0].Staged || st.Deployments[0].Refspec != "v2" {
		t.Fatalf("status with staged: %+v", st.Deployments)
	}
	if !strings.Contains(gostree(t, "admin", "status", "--sysroot="+sr, "--run-dir="+run), " (staged)\n") {
		t.Error("status does not mark the staged deployment")
	}
	// ostree (looking at the real /run) still sees only v1.
	if got := admin(t, "ostree", sr, "status"); strings.Count(got, "testos ") != 1 {
		t.Errorf("ostree status: %s", got)
	}
	// A locked staged deployment is not finalized (and that is no error).
	if msg := gostreeFails(t, "admin", "deploy", "--sysroot="+sr, "--lock-finalization", "v2"); !strings.Contains(msg, "needs stage") {
		t.Errorf("lock-finalization without stage: %s", msg)
	}
	gostree(t, append([]string{"admin", "deploy", "--stage", "--lock-finalization", "--boot-counting=3", "v2"}, flags...)...)
	if _, err := os.Stat(filepath.Join(run, "ostree/staged-deployment-locked")); err != nil {
		t.Fatal(err)
	}
	if out := gostree(t, "admin", "finalize-staged", "--sysroot="+sr, "--run-dir="+run); !strings.Contains(out, "locked") {
		t.Errorf("finalize while locked: %s", out)
	}
	if st := statusJSONOf(t, sr, "--run-dir="+run); !st.Deployments[0].Staged {
		t.Error("locked staged deployment was finalized")
	}
	must(t, os.Remove(filepath.Join(run, "ostree/staged-deployment-locked")))
	// A late /etc edit in the current deployment.
	st = statusJSONOf(t, sr, "--run-dir="+run)
	cur := filepath.Join(st.Deployments[1].Deployment, "etc")
	newEtc := filepath.Join(st.Deployments[0].Deployment, "etc")
	writeFile(t, filepath.Join(cur, "late.conf"), "edited after staging\n", 0o644)
	out := gostree(t, "admin", "finalize-staged", "--sysroot="+sr, "--run-dir="+run)
	if !strings.Contains(out, "Copying /etc changes: 0 modified, 0 removed, 1 added") || !strings.Contains(out, "bootconfig swap: yes") {
		t.Errorf("finalize output: %s", out)
	}
	if _, err := os.Stat(filepath.Join(run, "ostree/staged-deployment")); err == nil {
		t.Error("staged record still present")
	}
	if b, err := os.ReadFile(filepath.Join(newEtc, "late.conf")); err != nil || string(b) != "edited after staging\n" {
		t.Errorf("late edit not merged: %q %v", b, err)
	}
	ents, _ := filepath.Glob(filepath.Join(sr, "boot/loader/entries/*.conf"))
	var names []string
	for _, e := range ents {
		names = append(names, filepath.Base(e))
	}
	if strings.Join(names, " ") != "ostree-1-testos.conf ostree-2-testos+3.conf" {
		t.Errorf("entries: %v", names)
	}
	st = statusJSONOf(t, sr, "--run-dir="+run)
	if st.Deployments[0].TriesLeft == nil || *st.Deployments[0].TriesLeft != 3 || st.Deployments[0].Refspec != "v2" {
		t.Errorf("boot counter not reported: %+v", st.Deployments[0])
	}
	if !strings.Contains(gostree(t, "admin", "status", "--sysroot="+sr), "Boot counter: 3 tries left, 0 done") {
		t.Error("status text lacks the boot counter")
	}
	// ostree reads the counted entry name too.
	if got := admin(t, "ostree", sr, "status"); strings.Count(got, "testos ") != 2 || !strings.Contains(got, "refspec: v2") {
		t.Errorf("ostree status: %s", got)
	}
	// Nothing staged: finalize is a no-op.
	if out := gostree(t, "admin", "finalize-staged", "--sysroot="+sr, "--run-dir="+run); !strings.Contains(out, "No staged deployment") {
		t.Errorf("second finalize: %s", out)
	}
}

// TestAdminUpgradeSwitchOriginKargs covers upgrade (local repo), switch,
// set-origin and kargs edit-in-place.
func TestAdminUpgradeSwitchOriginKargs(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	sr := newVectorSysroot(t, "gostree", trees)
	repo := "--repo=" + sr + "/ostree/repo"
	ostreeCmd(t, repo, "commit", "-b", "stable", "--timestamp=2020-01-01 00:00:00 +0000", "--add-metadata-string=version=1", "--owner-uid=0", "--owner-gid=0", trees[1])
	admin(t, "gostree", sr, "deploy", "--os=testos", "--karg=root=/dev/vda", "stable")
	if out := admin(t, "gostree", sr, "upgrade"); !strings.Contains(out, "No update available") {
		t.Errorf("upgrade without update: %s", out)
	}
	ostreeCmd(t, repo, "commit", "-b", "stable", "--timestamp=2020-01-02 00:00:00 +0000", "--add-metadata-string=version=2", "--owner-uid=0", "--owner-gid=0", trees[2])
	admin(t, "gostree", sr, "upgrade")
	st := statusJSONOf(t, sr)
	if st.Deployments[0].Version != "2" || st.Deployments[0].Refspec != "stable" {
		t.Fatalf("after upgrade: %+v", st.Deployments[0])
	}
	// Going back in time is refused.
	ostreeCmd(t, repo, "commit", "-b", "stable", "--timestamp=2019-01-01 00:00:00 +0000", "--add-metadata-string=version=0", "--owner-uid=0", "--owner-gid=0", trees[3])
	if msg := gostreeFails(t, "admin", "upgrade", "--sysroot="+sr); !strings.Contains(msg, "chronologically older") {
		t.Errorf("downgrade: %s", msg)
	}
	admin(t, "gostree", sr, "switch", "v3")
	st = statusJSONOf(t, sr)
	if st.Deployments[0].Refspec != "v3" || st.Deployments[0].Version != "3" {
		t.Fatalf("after switch: %+v", st.Deployments[0])
	}
	admin(t, "gostree", sr, "set-origin", "--set=gpg-verify=false", "myremote", "http://127.0.0.1:1/repo", "main")
	st = statusJSONOf(t, sr)
	if st.Deployments[0].Refspec != "myremote:main" {
		t.Errorf("after set-origin: %+v", st.Deployments[0])
	}
	if cfg, _ := os.ReadFile(filepath.Join(sr, "ostree/repo/config")); !strings.Contains(string(cfg), "[remote \"myremote\"]\nurl=http://127.0.0.1:1/repo\ngpg-verify=false") {
		t.Errorf("repo config: %s", cfg)
	}
	if !strings.Contains(admin(t, "ostree", sr, "status"), "origin refspec: myremote:main") {
		t.Error("ostree does not see the new origin")
	}
	admin(t, "gostree", sr, "kargs", "edit-in-place", "--append=console=ttyS0", "--replace=root=/dev/vdb")
	st = statusJSONOf(t, sr)
	for _, d := range st.Deployments {
		k := strings.Join(d.Kargs, " ")
		if !strings.Contains(k, "console=ttyS0") || !strings.Contains(k, "root=/dev/vdb") || !strings.Contains(k, "ostree=/ostree/boot.") {
			t.Errorf("kargs of %d: %s", d.Index, k)
		}
	}
	if got := admin(t, "ostree", sr, "status"); strings.Count(got, "testos ") != len(st.Deployments) {
		t.Errorf("ostree status after kargs edit: %s", got)
	}
	admin(t, "gostree", sr, "kargs", "edit-in-place", "--deployment-index=0", "--delete=console=ttyS0")
	st = statusJSONOf(t, sr)
	if k := strings.Join(st.Deployments[0].Kargs, " "); strings.Contains(k, "console=") {
		t.Errorf("kargs after delete: %s", k)
	}
	if k := strings.Join(st.Deployments[1].Kargs, " "); !strings.Contains(k, "console=ttyS0") {
		t.Errorf("--deployment-index=0 changed deployment 1: %s", k)
	}
	before := snapshot(t, sr)
	if msg := gostreeFails(t, "admin", "kargs", "edit-in-place", "--sysroot="+sr, "--append=x=1", "--delete=absent"); !strings.Contains(msg, `"absent" not found`) {
		t.Errorf("deleting an absent argument: %s", msg)
	}
	compareStates(t, "after a failed kargs edit", before, snapshot(t, sr))
}

// makeTree writes a tiny bootable tree with the given extra files.
func makeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		writeFile(t, filepath.Join(dir, p), c, 0o644)
	}
}

// TestAdminBadInput: commits that cannot be deployed and missing input
// fail with clear errors, and the current default deployment (and the
// whole listing) is untouched.
func TestAdminBadInput(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	sr := newVectorSysroot(t, "gostree", trees)
	admin(t, "gostree", sr, "deploy", "--os=testos", "v1")
	def := defaultDeployment(t, sr)
	base := t.TempDir()
	cases := map[string]struct {
		files map[string]string
		want  string
	}{
		"no-kernel":   {map[string]string{"usr/etc/a": "a\n", "usr/bin/x": "x\n"}, "no kernel found"},
		"two-kernels": {map[string]string{"usr/lib/modules/1.0/vmlinuz": "k1", "usr/lib/modules/2.0/vmlinuz": "k2", "usr/etc/a": "a\n"}, "has 2 kernels"},
		"etc-and-usr-etc": {map[string]string{"usr/lib/modules/1.0/vmlinuz": "k1", "usr/etc/a": "a\n", "etc/b": "b\n"},
			"tree contains both /etc and /usr/etc"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(base, name)
			makeTree(t, dir, c.files)
			ostreeCmd(t, "--repo="+sr+"/ostree/repo", "commit", "-b", "bad/"+name, "--owner-uid=0", "--owner-gid=0", dir)
			before := snapshot(t, sr)
			msg := gostreeFails(t, "admin", "deploy", "--sysroot="+sr, "--os=testos", "bad/"+name)
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not say %q", msg, c.want)
			}
			compareStates(t, name, before, snapshot(t, sr))
			if got := defaultDeployment(t, sr); got != def {
				t.Errorf("default changed to %s", got)
			}
		})
	}
	t.Run("missing-ref", func(t *testing.T) {
		before := snapshot(t, sr)
		if msg := gostreeFails(t, "admin", "deploy", "--sysroot="+sr, "--os=testos", "no/such/ref"); !strings.Contains(msg, "no/such/ref") {
			t.Errorf("error: %s", msg)
		}
		compareStates(t, "missing ref", before, snapshot(t, sr))
	})
	t.Run("unknown-os", func(t *testing.T) {
		if msg := gostreeFails(t, "admin", "deploy", "--sysroot="+sr, "--os=nope", "v1"); !strings.Contains(msg, `no such stateroot "nope"`) {
			t.Errorf("error: %s", msg)
		}
	})
	t.Run("missing-origin", func(t *testing.T) {
		must(t, os.Remove(def+".origin"))
		defer os.WriteFile(def+".origin", []byte("[origin]\nrefspec=v1\n"), 0o644)
		a, b := admin(t, "ostree", sr, "status"), admin(t, "gostree", sr, "status")
		if a != b || !strings.Contains(b, "origin: none") {
			t.Errorf("status without origin:\nostree:\n%s\ngostree:\n%s", a, b)
		}
		if msg := gostreeFails(t, "admin", "upgrade", "--sysroot="+sr); !strings.Contains(msg, "has no origin refspec") {
			t.Errorf("upgrade without origin: %s", msg)
		}
	})
}

// TestAdminFullDisk deploys onto a sysroot on a small tmpfs whose space
// runs out during the deploy: clear ENOSPC error, default untouched, no
// leftovers; after freeing space the deploy works.
func TestAdminFullDisk(t *testing.T) {
	requireSysrootTests(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	if out, err := runCmd("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	defer runCmd("umount", "-l", mnt)
	sr := filepath.Join(mnt, "sysroot")
	must(t, os.Mkdir(sr, 0o755))
	admin(t, "gostree", sr, "init-fs")
	admin(t, "gostree", sr, "os-init", "testos")
	tree := filepath.Join(dir, "tree")
	makeTree(t, tree, map[string]string{"usr/lib/modules/1.0/vmlinuz": "k", "usr/etc/small.conf": "s\n"})
	ostreeCmd(t, "--repo="+sr+"/ostree/repo", "commit", "-b", "os", "--owner-uid=0", "--owner-gid=0", tree)
	admin(t, "gostree", sr, "deploy", "--os=testos", "os")
	def := defaultDeployment(t, sr)
	// v2 carries 1 MiB of configuration, copied (not linked) into /etc.
	writeFile(t, filepath.Join(tree, "usr/etc/big.conf"), strings.Repeat("x", 1<<20), 0o644)
	ostreeCmd(t, "--repo="+sr+"/ostree/repo", "commit", "-b", "os", "--owner-uid=0", "--owner-gid=0", tree)
	// Fill the filesystem.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	must(t, err)
	buf := make([]byte, 64<<10)
	for i := 0; i < 1000; i++ {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	before := snapshot(t, sr)
	msg := gostreeFails(t, "admin", "deploy", "--sysroot="+sr, "--os=testos", "os")
	if !strings.Contains(msg, "no space left on device") {
		t.Errorf("error: %s", msg)
	}
	compareStates(t, "after ENOSPC", before, snapshot(t, sr))
	if got := defaultDeployment(t, sr); got != def {
		t.Errorf("default changed to %s", got)
	}
	must(t, os.Remove(filler))
	admin(t, "gostree", sr, "deploy", "--os=testos", "os")
	if got := defaultDeployment(t, sr); got == def {
		t.Error("deploy after freeing space did not switch")
	}
	if a, b := admin(t, "ostree", sr, "status"), admin(t, "gostree", sr, "status"); a != b {
		t.Errorf("status:\n%s\n%s", a, b)
	}
}

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestAdminUpgradePulls: upgrade pulls the origin's REMOTE:REF (here from
// a file:// archive repository made by ostree) and deploys it.
func TestAdminUpgradePulls(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	served := filepath.Join(t.TempDir(), "served")
	ostreeCmd(t, "init", "--repo="+served, "--mode=archive")
	commit := func(n int) string {
		return strings.TrimSpace(ostreeCmd(t, "--repo="+served, "commit", "-b", "os/stable", "--owner-uid=0", "--owner-gid=0",
			fmt.Sprintf("--timestamp=2020-01-0%d 00:00:00 +0000", n), fmt.Sprintf("--add-metadata-string=version=%d", n), trees[n]))
	}
	c1 := commit(1)
	sr := newVectorSysroot(t, "gostree", trees)
	ostreeCmd(t, "--repo="+sr+"/ostree/repo", "remote", "add", "--no-gpg-verify", "origin", "file://"+served)
	ostreeCmd(t, "--repo="+sr+"/ostree/repo", "pull", "origin", "os/stable")
	admin(t, "gostree", sr, "deploy", "--os=testos", "origin:os/stable")
	if out := admin(t, "gostree", sr, "upgrade"); !strings.Contains(out, "No update available") {
		t.Errorf("upgrade with nothing new: %s", out)
	}
	c2 := commit(2)
	admin(t, "gostree", sr, "upgrade", "--pull-only")
	if st := statusJSONOf(t, sr); st.Deployments[0].Checksum != c1 {
		t.Errorf("--pull-only deployed: %+v", st.Deployments[0])
	}
	admin(t, "gostree", sr, "upgrade")
	st := statusJSONOf(t, sr)
	if st.Deployments[0].Checksum != c2 || st.Deployments[0].Refspec != "origin:os/stable" || st.Deployments[1].Checksum != c1 {
		t.Fatalf("after upgrade: %+v", st.Deployments)
	}
	if got := admin(t, "ostree", sr, "status"); !strings.Contains(got, c2+".0") {
		t.Errorf("ostree status: %s", got)
	}
}

// TestAdminImmutableDeployments: without mutable-deployments both tools
// set the immutable attribute on deployment roots, and each removes the
// other's immutable deployments.
func TestAdminImmutableDeployments(t *testing.T) {
	requireSysrootTests(t)
	os.Unsetenv("OSTREE_SYSROOT_DEBUG")
	trees := vectorTrees(t)
	sr := newVectorSysroot(t, "gostree", trees)
	t.Cleanup(func() {
		dirs, _ := filepath.Glob(filepath.Join(sr, "ostree/deploy/*/deploy/*"))
		for _, d := range dirs {
			exec.Command("chattr", "-i", d).Run()
		}
	})
	admin(t, "gostree", sr, "deploy", "--os=testos", "v1")
	first := defaultDeployment(t, sr)
	out, err := exec.Command("lsattr", "-d", first).CombinedOutput()
	if err != nil {
		t.Skipf("lsattr: %v %s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) == 0 || !strings.Contains(f[0], "i") {
		if strings.Contains(string(out), "Operation not supported") {
			t.Skip("no file attributes on this filesystem")
		}
		t.Fatalf("gostree deployment not immutable: %s", out)
	}
	admin(t, "ostree", sr, "deploy", "--os=testos", "v2")
	second := defaultDeployment(t, sr)
	// ostree removes gostree's immutable deployment...
	admin(t, "ostree", sr, "undeploy", "1")
	if _, err := os.Stat(first); err == nil {
		t.Error("ostree could not remove gostree's deployment")
	}
	// ...and gostree removes ostree's.
	admin(t, "gostree", sr, "deploy", "--os=testos", "v3")
	admin(t, "gostree", sr, "undeploy", "1")
	if _, err := os.Stat(second); err == nil {
		t.Error("gostree could not remove ostree's immutable deployment")
	}
}

// TestAdminLockExcludesOstree: while gostree holds the sysroot lock, a
// concurrent `ostree admin deploy` waits, and completes once it is freed.
func TestAdminLockExcludesOstree(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	sr := newVectorSysroot(t, "gostree", trees)
	admin(t, "gostree", sr, "deploy", "--os=testos", "v1")
	s, err := sysroot.Open(sr, sysroot.Options{})
	must(t, err)
	defer s.Close()
	must(t, s.Lock())
	cmd := exec.Command(requireOstree(t), "admin", "deploy", "--sysroot="+sr, "--os=testos", "v2")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("ostree deployed while gostree held the lock (%v): %s", err, out.String())
	case <-time.After(500 * time.Millisecond):
	}
	s.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("ostree admin deploy after the lock was released: %v: %s", err, out.String())
	}
	if st := statusJSONOf(t, sr); len(st.Deployments) != 2 || st.Deployments[0].Refspec != "v2" {
		t.Errorf("after ostree's deploy: %+v", st.Deployments)
	}
}
