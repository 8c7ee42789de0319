package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// The sysroot tests drive `gostree admin` in-process and the real
// `ostree admin` 2022.7 on plain directories (as root; nothing is booted)
// and compare what they leave on disk.

const (
	vecV1 = "1f1a0770b5d1a4f92e6465045b499cf96227456fd1ee7bef7aeac2ef1756e978"
	vecV2 = "225c28770dbee470727c6c7288f40bdf32bba4ac1cbb95be4db8aac81a1e9bfc"
	vecV3 = "9aaa478bf12fef889cae38c16aa9c5086f6f12788c75b949a4baaa8f18db7ee4"
	bcV1  = "ef333050a464527e2ea2a4d0bbc309060d51af28da6b1029d85d5a9e97924d69"
	bcV3  = "7a4f3123e0917b142f1d847d865e478e19230e5bc064435691f81d95c17c6741"
)

func requireSysrootTests(t *testing.T) {
	t.Helper()
	requireOstree(t)
	if !isRoot() {
		if os.Getenv("CI") == "true" {
			t.Fatal("sysroot tests need root")
		}
		t.Skip("sysroot tests need root (ownership, hard links into a bare repo)")
	}
	// Deployments stay deletable by t.TempDir; the immutable flag has its
	// own test.
	t.Setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
}

func writeFile(t testing.TB, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// makeVectorTree builds tree vN of ../shared/vectors/README.md
// ("Input trees of sysroot-scenario.txt").
func makeVectorTree(t testing.TB, dir string, n int) {
	t.Helper()
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	kernel := "KERNEL-IMAGE-v1\n"
	if n == 3 {
		kernel = "KERNEL-IMAGE-v3\n"
	}
	mod := filepath.Join(dir, "usr/lib/modules/5.10.0-test")
	writeFile(t, filepath.Join(mod, "vmlinuz"), kernel, 0o644)
	writeFile(t, filepath.Join(mod, "initramfs.img"), "INITRAMFS-v1\n", 0o644)
	writeFile(t, filepath.Join(dir, "usr/lib/os-release"), fmt.Sprintf("NAME=TestOS\nID=testos\nVERSION_ID=%d\nPRETTY_NAME=\"TestOS\"\n", n), 0o644)
	etc := filepath.Join(dir, "usr/etc")
	writeFile(t, filepath.Join(etc, "group"), "root:x:0:\n", 0o644)
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(etc, "os-release")); err != nil {
		t.Fatal(err)
	}
	if n == 2 {
		writeFile(t, filepath.Join(etc, "a.conf"), "default-a-v2\n", 0o644)
		writeFile(t, filepath.Join(etc, "b.conf"), "default-b-v2\n", 0o644)
		writeFile(t, filepath.Join(etc, "c.conf"), "default-c-v2\n", 0o644)
		writeFile(t, filepath.Join(etc, "d.conf"), "default-d\n", 0o644)
	} else {
		writeFile(t, filepath.Join(etc, "passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644)
		writeFile(t, filepath.Join(etc, "a.conf"), "default-a\n", 0o644)
		writeFile(t, filepath.Join(etc, "b.conf"), "default-b\n", 0o644)
		writeFile(t, filepath.Join(etc, "c.conf"), "default-c\n", 0o644)
	}
	writeFile(t, filepath.Join(etc, "sub/x.conf"), "x\n", 0o644)
	writeFile(t, filepath.Join(dir, "usr/bin/true"), "#!/bin/sh\n", 0o755)
}

func commitVector(t testing.TB, sysroot, tree string, n int) string {
	t.Helper()
	out := ostreeCmd(t, "--repo="+sysroot+"/ostree/repo", "commit", "-b", "testos/stable",
		fmt.Sprintf("--timestamp=2020-01-0%d 00:00:00 +0000", n), fmt.Sprintf("--subject=v%d", n),
		"--owner-uid=0", "--owner-gid=0", fmt.Sprintf("--add-metadata-string=version=%d", n), tree)
	return strings.TrimSpace(out)
}

// admin runs `TOOL admin ARGS... --sysroot=S` with the real ostree or
// in-process gostree and returns stdout.
func admin(t testing.TB, tool, sysroot string, args ...string) string {
	t.Helper()
	full := append([]string{"admin"}, args...)
	full = append(full, "--sysroot="+sysroot)
	if args[0] == "init-fs" {
		full = []string{"admin", "init-fs", sysroot}
	}
	if tool == "ostree" {
		return ostreeCmd(t, full...)
	}
	return gostree(t, full...)
}

// listing is the transcript's "listing of sysroot (excluding ostree/repo
// and deployment contents)".
func listing(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "ostree/repo" {
			return filepath.SkipDir
		}
		if m, _ := filepath.Match("ostree/deploy/*/deploy/*", rel); m && d.IsDir() {
			lines = append(lines, "d ./"+rel)
			return filepath.SkipDir
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		typ := "f"
		extra := ""
		switch {
		case st.IsDir():
			typ = "d"
		case st.Mode()&fs.ModeSymlink != 0:
			typ = "l"
			tgt, _ := os.Readlink(p)
			extra = " -> " + tgt
		}
		mode := st.Mode().Perm()
		if st.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		lines = append(lines, fmt.Sprintf("%s %o ./%s%s", typ, mode, rel, extra))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// bootFiles returns the BLS entries and origin files, keyed by path.
func bootFiles(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, pat := range []string{"boot/loader/entries/*.conf", "ostree/deploy/*/deploy/*.origin"} {
		ms, _ := filepath.Glob(filepath.Join(root, pat))
		for _, m := range ms {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, m)
			out[rel] = string(b)
		}
	}
	return out
}

// etcListing is the transcript's "merged /etc of new deployment".
func etcListing(t testing.TB, etc string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(etc, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == etc {
			return err
		}
		rel, _ := filepath.Rel(etc, p)
		st, _ := os.Lstat(p)
		switch {
		case st.IsDir():
			out[rel] = fmt.Sprintf("dir %o", st.Mode().Perm())
		case st.Mode()&fs.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			out[rel] = "symlink -> " + tgt
		default:
			b, _ := os.ReadFile(p)
			out[rel] = fmt.Sprintf("%o %s", st.Mode().Perm(), strings.TrimSuffix(string(b), "\n"))
		}
		return nil
	})
	return out
}

func sortedRefs(t testing.TB, sysroot string) string {
	out := ostreeCmd(t, "--repo="+sysroot+"/ostree/repo", "refs")
	l := strings.Fields(out)
	sort.Strings(l)
	return strings.Join(l, " ")
}

func defaultDeployment(t testing.TB, sysroot string) string {
	t.Helper()
	ms, _ := filepath.Glob(filepath.Join(sysroot, "ostree/deploy/testos/deploy/*"))
	// the default is the one with the highest BLS version; resolve via
	// the ostree= argument of the entries.
	best, bestV := "", -1
	ents, _ := filepath.Glob(filepath.Join(sysroot, "boot/loader/entries/ostree-*.conf"))
	for _, e := range ents {
		b, _ := os.ReadFile(e)
		var v int
		var karg string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "version ") {
				fmt.Sscanf(l, "version %d", &v)
			}
			if strings.HasPrefix(l, "options ") {
				for _, a := range strings.Fields(l) {
					if strings.HasPrefix(a, "ostree=") {
						karg = strings.TrimPrefix(a, "ostree=")
					}
				}
			}
		}
		if v > bestV {
			tgt, err := filepath.EvalSymlinks(filepath.Join(sysroot, karg))
			if err != nil {
				t.Fatalf("default entry %s: %v", e, err)
			}
			best, bestV = tgt, v
		}
	}
	_ = ms
	return best
}

// scenarioState is everything the transcript shows after a step.
type scenarioState struct {
	listing string
	files   map[string]string
	refs    string
}

func snapshot(t testing.TB, sysroot string) scenarioState {
	return scenarioState{listing(t, sysroot), bootFiles(t, sysroot), sortedRefs(t, sysroot)}
}

func compareStates(t *testing.T, step string, want, got scenarioState) {
	t.Helper()
	if want.listing != got.listing {
		t.Errorf("%s: listing differs\nostree:\n%s\ngostree:\n%s", step, want.listing, got.listing)
	}
	if fmt.Sprint(want.files) != fmt.Sprint(got.files) {
		t.Errorf("%s: BLS entries/origins differ\nostree:  %q\ngostree: %q", step, want.files, got.files)
	}
	if want.refs != got.refs {
		t.Errorf("%s: refs differ: ostree %s, gostree %s", step, want.refs, got.refs)
	}
}

// runVectorScenario replays sysroot-scenario.txt with tool and returns
// the state after every step plus the merged /etc after the v2 deploy.
func runVectorScenario(t *testing.T, tool, dir string, trees [4]string, deployFlags ...string) ([]scenarioState, map[string]string, []string) {
	sr := filepath.Join(dir, "sysroot")
	if err := os.Mkdir(sr, 0o755); err != nil {
		t.Fatal(err)
	}
	var states []scenarioState
	var outputs []string
	run := func(args ...string) string {
		out := admin(t, tool, sr, args...)
		outputs = append(outputs, out)
		return out
	}
	run("init-fs")
	run("os-init", "testos")
	if c := commitVector(t, sr, trees[1], 1); c != vecV1 {
		t.Fatalf("commit v1 = %s, vector says %s", c, vecV1)
	}
	run(append([]string{"deploy", "--os=testos", "--karg=root=LABEL=rootfs", "--karg=quiet", "testos/stable"}, deployFlags...)...)
	states = append(states, snapshot(t, sr))
	etc := filepath.Join(sr, "ostree/deploy/testos/deploy", vecV1+".0", "etc")
	writeFile(t, filepath.Join(etc, "a.conf"), "locally-modified-a\n", 0o644)
	os.Remove(filepath.Join(etc, "b.conf"))
	os.Chmod(filepath.Join(etc, "c.conf"), 0o600)
	writeFile(t, filepath.Join(etc, "local-new.conf"), "local-new\n", 0o644)
	writeFile(t, filepath.Join(etc, "localdir/y"), "y\n", 0o644)
	run("config-diff", "--os=testos")
	if c := commitVector(t, sr, trees[2], 2); c != vecV2 {
		t.Fatalf("commit v2 = %s, vector says %s", c, vecV2)
	}
	run(append([]string{"deploy", "--os=testos", "testos/stable"}, deployFlags...)...)
	states = append(states, snapshot(t, sr))
	merged := etcListing(t, filepath.Join(sr, "ostree/deploy/testos/deploy", vecV2+".0", "etc"))
	run("status")
	run("pin", "1")
	if c := commitVector(t, sr, trees[3], 3); c != vecV3 {
		t.Fatalf("commit v3 = %s, vector says %s", c, vecV3)
	}
	run(append([]string{"deploy", "--os=testos", "testos/stable"}, deployFlags...)...)
	states = append(states, snapshot(t, sr))
	run("status")
	run("undeploy", "2")
	states = append(states, snapshot(t, sr))
	run("status")
	run(append([]string{"deploy", "--os=testos", "--retain", "testos/stable"}, deployFlags...)...)
	states = append(states, snapshot(t, sr))
	run("status")
	run(append([]string{"deploy", "--os=testos", "testos/stable"}, deployFlags...)...)
	run(append([]string{"deploy", "--os=testos", "testos/stable"}, deployFlags...)...)
	states = append(states, snapshot(t, sr))
	return states, merged, outputs
}

func vectorTrees(t *testing.T) [4]string {
	var trees [4]string
	base := t.TempDir()
	for n := 1; n <= 3; n++ {
		trees[n] = filepath.Join(base, fmt.Sprintf("v%d", n))
		makeVectorTree(t, trees[n], n)
	}
	return trees
}

// TestAdminVectorScenario reproduces ../shared/vectors/sysroot-scenario.txt
// with gostree and with ostree: same listings of /boot and /ostree, BLS
// entries, origins, refs, status and config-diff output, and the same
// merged /etc except for the one chosen difference (c.conf: mode-only
// change keeps the new default content).
func TestAdminVectorScenario(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	want, wantEtc, wantOut := runVectorScenario(t, "ostree", t.TempDir(), trees)
	for _, mode := range []string{"default", "compat"} {
		t.Run(mode, func(t *testing.T) {
			var flags []string
			if mode == "compat" {
				flags = []string{"--etc-ostree-compat"}
			}
			got, gotEtc, gotOut := runVectorScenario(t, "gostree", t.TempDir(), trees, flags...)
			for i := range want {
				compareStates(t, fmt.Sprintf("step %d", i), want[i], got[i])
			}
			// Outputs: every status must match; config-diff (index 3)
			// lists the same lines (their order is readdir order, which
			// depends on each filesystem's inode allocation; the exact
			// order is compared on one sysroot in the etc tests).
			for _, i := range []int{5, 8, 10, 12} {
				if wantOut[i] != gotOut[i] {
					t.Errorf("output %d differs:\nostree:\n%s\ngostree:\n%s", i, wantOut[i], gotOut[i])
				}
			}
			if sortedLines(wantOut[3]) != sortedLines(gotOut[3]) {
				t.Errorf("config-diff differs:\nostree:\n%s\ngostree:\n%s", wantOut[3], gotOut[3])
			}
			wantC := wantEtc["c.conf"]
			if wantC != "600 default-c" {
				t.Fatalf("ostree's merged c.conf = %q, the vector says 600 default-c", wantC)
			}
			if mode == "default" {
				if gotEtc["c.conf"] != "600 default-c-v2" {
					t.Errorf("gostree c.conf = %q, want the new default content with the local mode", gotEtc["c.conf"])
				}
				if !strings.Contains(gotOut[4], "note: /etc/c.conf: only its mode/owner was changed locally") {
					t.Errorf("deploy output lacks the note about c.conf:\n%s", gotOut[4])
				}
				gotEtc["c.conf"] = wantC
			}
			if fmt.Sprint(wantEtc) != fmt.Sprint(gotEtc) {
				t.Errorf("merged /etc differs:\nostree:  %v\ngostree: %v", wantEtc, gotEtc)
			}
		})
	}
}

// ostreeFails runs the real ostree expecting failure and returns stderr.
func ostreeFails(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(requireOstree(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err == nil {
		t.Fatalf("ostree %s: succeeded, expected an error", strings.Join(args, " "))
	}
	return errb.String()
}
