package sysroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/sysroot/etcmerge"
)

// The crash-safety harness. The test binary re-executes itself as a
// helper (GOSTREE_TEST_HELPER) that performs one sysroot operation and is
// killed with SIGKILL at the K-th crash point (GOSTREE_CRASH_AT=K, see
// crash.go), for every K until the operation completes, plus a few kills
// at random times. After each kill:
//   - every BLS entry, the default one first, references a complete
//     deployment whose files are the hard links of its commit's objects;
//   - the real `ostree admin status` reads the sysroot;
//   - Cleanup removes every leftover (unreferenced deployments, inactive
//     loader/bootlink dirs, temporary files), and a new deploy works.

func TestMain(m *testing.M) {
	if op := os.Getenv("GOSTREE_TEST_HELPER"); op != "" {
		if err := helperMain(op); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helperMain(op string) error {
	ctx := context.Background()
	s, err := Open(os.Getenv("HELPER_SYSROOT"), Options{RunDir: os.Getenv("HELPER_RUNDIR"), AllowUnbootedStage: true})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Lock(); err != nil {
		return err
	}
	switch op {
	case "deploy":
		_, err = s.Deploy(ctx, DeployOptions{OSName: "testos", Revision: os.Getenv("HELPER_REV")})
	case "stage":
		_, err = s.Deploy(ctx, DeployOptions{OSName: "testos", Revision: os.Getenv("HELPER_REV"), Stage: true})
	case "finalize":
		_, err = s.FinalizeStaged(ctx, etcmerge.Options{})
	case "cleanup":
		_, err = s.Cleanup(ctx, CleanupOptions{})
	default:
		err = fmt.Errorf("unknown helper op %q", op)
	}
	return err
}

func requireRootAndOstree(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ostree")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the crash harness needs root and the ostree CLI")
		}
		t.Skip("needs root and the ostree CLI")
	}
	t.Setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// crashTree writes a bootable tree with n files; variant changes the
// kernel (bootcsum), the configuration and every file.
func crashTree(t *testing.T, dir string, variant, n int) {
	t.Helper()
	w := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("usr/lib/modules/6.1.0/vmlinuz", fmt.Sprintf("kernel %d\n", variant))
	w("usr/lib/modules/6.1.0/initramfs.img", "initramfs\n")
	w("usr/lib/os-release", fmt.Sprintf("ID=crash\nVERSION_ID=%d\n", variant))
	w("usr/etc/a.conf", fmt.Sprintf("a %d\n", variant))
	w("usr/etc/sub/b.conf", "b\n")
	for i := 0; i < n; i++ {
		w(fmt.Sprintf("usr/share/data/d%02d/f%04d", i%20, i), fmt.Sprintf("file %d of variant %d\n", i, variant))
	}
}

type crashEnv struct {
	t       *testing.T
	ostree  string
	trees   [3]string
	sysroot string
	runDir  string
}

func (e *crashEnv) commit(n int) {
	run(e.t, e.ostree, "--repo="+e.sysroot+"/ostree/repo", "commit", fmt.Sprintf("--branch=v%d", n), "--owner-uid=0", "--owner-gid=0",
		fmt.Sprintf("--add-metadata-string=version=%d", n), fmt.Sprintf("--timestamp=2020-01-0%d 00:00:00 +0000", n), e.trees[n])
}

func (e *crashEnv) open() *Sysroot {
	s, err := Open(e.sysroot, Options{RunDir: e.runDir, AllowUnbootedStage: true})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.Lock(); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *crashEnv) deploy(rev string, stage bool) {
	s := e.open()
	defer s.Close()
	if _, err := s.Deploy(context.Background(), DeployOptions{OSName: "testos", Revision: rev, Stage: stage}); err != nil {
		e.t.Fatal(err)
	}
}

// fresh builds the starting sysroot of a scenario.
func (e *crashEnv) fresh(base string, setup func()) {
	root := filepath.Join(base, fmt.Sprintf("sr-%d", rand.Int63()))
	e.sysroot = filepath.Join(root, "sysroot")
	e.runDir = filepath.Join(root, "run")
	if err := InitFS(e.sysroot); err != nil {
		e.t.Fatal(err)
	}
	// Kills, not power cuts, are simulated: skip fsync to keep the
	// harness fast (the switch ordering is the same either way).
	run(e.t, e.ostree, "config", "--repo="+e.sysroot+"/ostree/repo", "set", "core.fsync", "false")
	s := e.open()
	if err := s.InitOS("testos"); err != nil {
		e.t.Fatal(err)
	}
	s.Close()
	e.commit(1)
	e.commit(2)
	setup()
}

// helper runs op in a child; crashAt > 0 kills it at that crash point,
// killAfter > 0 kills it after that delay. It reports whether the child
// completed normally.
func (e *crashEnv) helper(op, rev string, crashAt int, killAfter time.Duration) bool {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GOSTREE_TEST_HELPER="+op, "HELPER_SYSROOT="+e.sysroot, "HELPER_RUNDIR="+e.runDir, "HELPER_REV="+rev)
	if crashAt > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOSTREE_CRASH_AT=%d", crashAt))
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	if killAfter > 0 {
		timer := time.AfterFunc(killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	err := cmd.Wait()
	if err == nil {
		return true
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return false
		}
	}
	e.t.Fatalf("helper %s failed: %v: %s", op, err, errb.String())
	return false
}

// checkBootable verifies every BLS entry of the current loader: it names
// a complete deployment of one of the allowed commits. It returns the
// commit of the default entry.
func (e *crashEnv) checkBootable(label string) ostree.Checksum {
	t := e.t
	s, err := Open(e.sysroot, Options{RunDir: e.runDir})
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	defer s.Close()
	if err := s.Load(); err != nil {
		t.Fatalf("%s: loading the sysroot: %v", label, err)
	}
	var def ostree.Checksum
	n := 0
	for _, d := range s.Deployments {
		if d.Staged {
			continue
		}
		if n == 0 {
			def = d.Checksum
		}
		n++
		e.checkComplete(label, s, d)
	}
	if n == 0 {
		t.Fatalf("%s: no boot entries", label)
	}
	return def
}

// checkComplete compares a deployment directory with its commit: every
// file is a hard link of the commit's object, every directory exists.
func (e *crashEnv) checkComplete(label string, s *Sysroot, d *Deployment) {
	t := e.t
	r := s.Repo()
	cm, err := r.LoadCommit(d.Checksum)
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	root := s.DeploymentPath(d)
	var walk func(tree ostree.Checksum, rel string)
	count := 0
	walk = func(tree ostree.Checksum, rel string) {
		dt, err := r.LoadDirTree(tree)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		for _, f := range dt.Files {
			p := filepath.Join(root, rel, f.Name)
			var st, ost syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				t.Fatalf("%s: deployment %s is incomplete: %v", label, d.Name(), err)
			}
			c := f.Checksum.String()
			if err := syscall.Lstat(filepath.Join(r.Path(), "objects", c[:2], c[2:]+".file"), &ost); err != nil {
				t.Fatalf("%s: %v", label, err)
			}
			if st.Ino != ost.Ino || st.Dev != ost.Dev {
				t.Fatalf("%s: %s/%s is not the commit's object", label, d.Name(), filepath.Join(rel, f.Name))
			}
			count++
		}
		for _, sub := range dt.Dirs {
			if st, err := os.Lstat(filepath.Join(root, rel, sub.Name)); err != nil || !st.IsDir() {
				t.Fatalf("%s: deployment %s lacks directory %s: %v", label, d.Name(), filepath.Join(rel, sub.Name), err)
			}
			walk(sub.Tree, filepath.Join(rel, sub.Name))
		}
	}
	walk(cm.RootTree, "")
	if st, err := os.Lstat(filepath.Join(root, "etc", "a.conf")); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("%s: deployment %s has no merged /etc: %v", label, d.Name(), err)
	}
	if _, err := os.Stat(root + ".origin"); err != nil {
		t.Fatalf("%s: deployment %s has no origin: %v", label, d.Name(), err)
	}
	_ = count
}

// checkCleanup runs ostree admin status, then Cleanup, then checks no
// leftovers remain.
func (e *crashEnv) checkCleanup(label string) {
	t := e.t
	run(t, e.ostree, "admin", "status", "--sysroot="+e.sysroot)
	if !e.helper("cleanup", "", 0, 0) {
		t.Fatalf("%s: cleanup was killed", label)
	}
	s, err := Open(e.sysroot, Options{RunDir: e.runDir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Load(); err != nil {
		t.Fatalf("%s: after cleanup: %v", label, err)
	}
	want := map[string]bool{}
	for _, d := range s.Deployments {
		want[d.Name()] = true
		want[d.Name()+".origin"] = true
	}
	ents, _ := os.ReadDir(filepath.Join(e.sysroot, "ostree/deploy/testos/deploy"))
	for _, en := range ents {
		if !want[en.Name()] {
			t.Errorf("%s: leftover after cleanup: deploy/%s", label, en.Name())
		}
	}
	for _, dir := range []string{"boot", "ostree", "boot/loader/entries"} {
		ents, _ := os.ReadDir(filepath.Join(e.sysroot, dir))
		for _, en := range ents {
			n := en.Name()
			if strings.Contains(n, ".tmp") || n == "lock" {
				t.Errorf("%s: leftover after cleanup: %s/%s", label, dir, n)
			}
		}
	}
	loaders, _ := filepath.Glob(filepath.Join(e.sysroot, "boot/loader.*"))
	links, _ := filepath.Glob(filepath.Join(e.sysroot, "ostree/boot.*.*"))
	if len(loaders) != 1 || len(links) != 1 {
		t.Errorf("%s: after cleanup: loaders %v, bootlink dirs %v", label, loaders, links)
	}
	refs, err := s.Repo().ListRefs("ostree", false)
	if err != nil || len(refs) != len(s.Deployments) {
		t.Errorf("%s: deployment refs %v for %d deployments (%v)", label, refs, len(s.Deployments), err)
	}
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash harness takes minutes; not in -short")
	}
	ost := requireRootAndOstree(t)
	base := t.TempDir()
	e := &crashEnv{t: t, ostree: ost}
	for v := 1; v <= 2; v++ {
		e.trees[v] = filepath.Join(base, fmt.Sprintf("tree%d", v))
		crashTree(t, e.trees[v], v, 150)
	}
	v1, v2 := "v1", "v2"
	type scenario struct {
		name  string
		setup func()
		op    string
		rev   string
	}
	scenarios := []scenario{
		// Normal path: new BLS entries and the boot/loader swap.
		{"deploy", func() { e.deploy(v1, false) }, "deploy", v2},
		// Cheap path: same commit redeployed, only ostree/boot.B moves.
		{"redeploy-cheap", func() { e.deploy(v2, false); e.deploy(v2, false) }, "deploy", v2},
		// Finalizing a staged deployment.
		{"finalize", func() { e.deploy(v1, false); e.deploy(v2, true) }, "finalize", ""},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			e.t = t
			completed := false
			points := 0
			for k := 1; k <= 80 && !completed; k++ {
				e.fresh(base, sc.setup)
				before := e.checkBootable("before")
				completed = e.helper(sc.op, sc.rev, k, 0)
				label := fmt.Sprintf("%s killed at crash point %d", sc.name, k)
				if completed {
					label = sc.name + " completed"
				} else {
					points++
				}
				after := e.checkBootable(label)
				if completed && sc.op != "cleanup" && after == before && sc.name != "redeploy-cheap" {
					t.Errorf("%s: default did not change", label)
				}
				e.checkCleanup(label)
				// The sysroot stays usable: a new deploy works.
				e.deploy(v1, false)
				e.checkBootable(label + ", then deployed again")
				os.RemoveAll(filepath.Dir(e.sysroot))
			}
			if !completed {
				t.Fatalf("%s never completed within 80 crash points", sc.name)
			}
			if points < 5 {
				t.Errorf("%s: only %d crash points were exercised", sc.name, points)
			}
			t.Logf("%s: killed at each of %d crash points", sc.name, points)
			// Random kills, bounded.
			rng := rand.New(rand.NewSource(1))
			for i := 0; i < 4; i++ {
				e.fresh(base, sc.setup)
				delay := time.Duration(rng.Intn(40000)) * time.Microsecond
				e.helper(sc.op, sc.rev, 0, delay)
				label := fmt.Sprintf("%s killed after %v", sc.name, delay)
				e.checkBootable(label)
				e.checkCleanup(label)
				os.RemoveAll(filepath.Dir(e.sysroot))
			}
		})
	}
}
