package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// newVectorSysroot makes an initialised sysroot with stateroot testos and
// the commits v1, v2, v3 on refs v1, v2, v3 (made by the real ostree).
func newVectorSysroot(t *testing.T, tool string, trees [4]string) string {
	t.Helper()
	sr := filepath.Join(t.TempDir(), "sysroot")
	must(t, os.Mkdir(sr, 0o755))
	admin(t, tool, sr, "init-fs")
	admin(t, tool, sr, "os-init", "testos")
	for n := 1; n <= 3; n++ {
		ostreeCmd(t, "--repo="+sr+"/ostree/repo", "commit", fmt.Sprintf("--branch=v%d", n),
			fmt.Sprintf("--timestamp=2020-01-0%d 00:00:00 +0000", n), fmt.Sprintf("--subject=v%d", n),
			"--owner-uid=0", "--owner-gid=0", fmt.Sprintf("--add-metadata-string=version=%d", n), trees[n])
	}
	return sr
}

// TestAdminSameAsOstree runs the same sequences of admin commands with
// both tools on fresh sysroots and compares the result after each step:
// listings, BLS entries, origins, refs and `admin status`.
func TestAdminSameAsOstree(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	originFile := filepath.Join(t.TempDir(), "my.origin")
	writeFile(t, originFile, "[origin]\nrefspec=custom:branch\nunlocked=none\n\n[rpmostree]\nrequested-packages=vim;\n", 0o644)
	seqs := map[string][][]string{
		"origin-file-and-proc-cmdline": {
			{"deploy", "--os=testos", "--origin-file=" + originFile, "v1"},
			{"deploy", "--os=testos", "--karg-proc-cmdline", "v2"},
			{"deploy", "--os=testos", "--karg-proc-cmdline", "--karg-append=extra=1", "--origin-file=" + originFile, "v3"},
		},
		"kargs-and-order": {
			{"deploy", "--os=testos", "--karg=root=/dev/vda", "--karg=console=ttyS0", "v1"},
			{"deploy", "--os=testos", "--karg-append=quiet", "v2"},
			{"deploy", "--os=testos", "--not-as-default", "v3"},
			{"deploy", "--os=testos", "--karg=console=tty0", "--retain", "v1"},
			{"deploy", "--os=testos", "--karg-none", "--karg=root=/dev/sda", "v2"},
			{"deploy", "--os=testos", "--no-merge", "--retain-rollback", "v3"},
			{"pin", "1"},
			{"deploy", "--os=testos", "--retain-pending", "v1"},
			{"undeploy", "1"},
			{"pin", "--unpin", "1"},
			{"deploy", "--os=testos", "--karg-append=x=1", "--karg-append=z=3", "v2"},
			{"deploy", "--os=testos", "--karg-delete=x=1", "--karg-append=y=2", "v1"},
			{"kargs", "edit-in-place", "--append-if-missing=console=ttyS1"},
			{"kargs", "edit-in-place", "--append-if-missing=console=ttyS1"},
			{"set-origin", "--index=0", "--set=gpg-verify=false", "myremote", "http://127.0.0.1:1/r", "v2"},
			{"set-origin", "--index=1", "--set=gpg-verify=false", "other", "http://127.0.0.1:1/o"},
			{"cleanup"},
		},
		"two-stateroots": {
			{"deploy", "--os=testos", "--karg=root=/dev/vda", "v1"},
			{"os-init", "otheros"},
			{"deploy", "--os=otheros", "--karg=root=/dev/vdb", "v3"},
			{"deploy", "--os=testos", "v2"},
			{"deploy", "--os=otheros", "v3"},
			{"undeploy", "0"},
		},
	}
	for name, seq := range seqs {
		t.Run(name, func(t *testing.T) {
			osr := newVectorSysroot(t, "ostree", trees)
			gsr := newVectorSysroot(t, "gostree", trees)
			for i, step := range seq {
				admin(t, "ostree", osr, step...)
				admin(t, "gostree", gsr, step...)
				label := fmt.Sprintf("step %d (%s)", i, strings.Join(step, " "))
				compareStates(t, label, snapshot(t, osr), snapshot(t, gsr))
				os1 := admin(t, "ostree", osr, "status")
				gs1 := admin(t, "gostree", gsr, "status")
				os2 := admin(t, "ostree", gsr, "status")
				if os1 != gs1 || os1 != os2 {
					t.Errorf("%s: status differs:\nostree on its sysroot:\n%s\ngostree:\n%s\nostree on gostree's sysroot:\n%s", label, os1, gs1, os2)
				}
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestAdminMixedTools alternates the tools on one sysroot: each reads,
// extends and cleans up what the other wrote, and the end state equals
// the one ostree alone produces.
func TestAdminMixedTools(t *testing.T) {
	requireSysrootTests(t)
	trees := vectorTrees(t)
	seq := [][]string{
		{"deploy", "--os=testos", "--karg=root=LABEL=rootfs", "v1"},
		{"deploy", "--os=testos", "v2"},
		{"pin", "1"},
		{"deploy", "--os=testos", "v3"},
		{"deploy", "--os=testos", "--retain", "v3"},
		{"undeploy", "3"},
		{"deploy", "--os=testos", "v3"},
		{"deploy", "--os=testos", "v3"},
		{"cleanup"},
	}
	for _, first := range []string{"ostree", "gostree"} {
		t.Run("first-"+first, func(t *testing.T) {
			ref := newVectorSysroot(t, "ostree", trees)
			mixed := newVectorSysroot(t, first, trees)
			tools := []string{first, map[string]string{"ostree": "gostree", "gostree": "ostree"}[first]}
			for i, step := range seq {
				admin(t, "ostree", ref, step...)
				tool := tools[i%2]
				admin(t, tool, mixed, step...)
				label := fmt.Sprintf("step %d (%s by %s)", i, strings.Join(step, " "), tool)
				compareStates(t, label, snapshot(t, ref), snapshot(t, mixed))
				if a, b := admin(t, "ostree", mixed, "status"), admin(t, "gostree", mixed, "status"); a != b {
					t.Errorf("%s: status differs:\nostree:\n%s\ngostree:\n%s", label, a, b)
				}
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestAdminKernelLayouts deploys trees with the other kernel layouts with
// both tools: no initramfs (init= argument, no initrd line), a
// devicetree, .vmlinuz.hmac, and the legacy usr/lib/ostree-boot layout
// with the bootcsum in the file names.
func TestAdminKernelLayouts(t *testing.T) {
	requireSysrootTests(t)
	legacy := strings.Repeat("5e", 32)
	layouts := map[string]map[string]string{
		"no-initramfs": {"usr/lib/modules/6.1.0/vmlinuz": "kernel\n"},
		"devicetree": {"usr/lib/modules/6.1.0/vmlinuz": "kernel\n", "usr/lib/modules/6.1.0/initramfs.img": "initrd\n",
			"usr/lib/modules/6.1.0/devicetree": "dtb\n", "usr/lib/modules/6.1.0/.vmlinuz.hmac": "hmac\n"},
		"legacy": {"usr/lib/ostree-boot/vmlinuz-6.1.0-" + legacy: "kernel\n", "usr/lib/ostree-boot/initramfs-6.1.0.img-" + legacy: "initrd\n"},
	}
	for name, files := range layouts {
		t.Run(name, func(t *testing.T) {
			tree := filepath.Join(t.TempDir(), "tree")
			files["usr/lib/os-release"] = "ID=layout\n"
			files["usr/etc/x.conf"] = "x\n"
			makeTree(t, tree, files)
			var states []scenarioState
			for _, tool := range []string{"ostree", "gostree"} {
				sr := filepath.Join(t.TempDir(), "sysroot")
				must(t, os.Mkdir(sr, 0o755))
				admin(t, tool, sr, "init-fs")
				admin(t, tool, sr, "os-init", "os")
				ostreeCmd(t, "--repo="+sr+"/ostree/repo", "commit", "-b", "k", "--owner-uid=0", "--owner-gid=0", "--timestamp=2020-01-01 00:00:00 +0000", tree)
				admin(t, tool, sr, "deploy", "--os=os", "--karg=root=/dev/vda", "k")
				admin(t, tool, sr, "deploy", "--os=os", "k")
				states = append(states, snapshot(t, sr))
			}
			compareStates(t, name, states[0], states[1])
		})
	}
}

// TestAdminWhiteouts: .ostree-wh.NAME files become overlayfs whiteouts
// (0:0 character devices with the file's mode) in deployments, as ostree
// does.
func TestAdminWhiteouts(t *testing.T) {
	requireSysrootTests(t)
	tree := filepath.Join(t.TempDir(), "tree")
	makeTree(t, tree, map[string]string{"usr/lib/modules/6.1.0/vmlinuz": "k\n", "usr/etc/x.conf": "x\n", "usr/lib/os-release": "ID=w\n",
		"usr/share/a/.ostree-wh.gone": "", "usr/share/.ostree-wh.b": "", "usr/share/keep": "keep\n"})
	must(t, os.Chmod(filepath.Join(tree, "usr/share/.ostree-wh.b"), 0o600))
	var got []string
	for _, tool := range []string{"ostree", "gostree"} {
		sr := filepath.Join(t.TempDir(), "sysroot")
		must(t, os.Mkdir(sr, 0o755))
		admin(t, tool, sr, "init-fs")
		admin(t, tool, sr, "os-init", "os")
		ostreeCmd(t, "--repo="+sr+"/ostree/repo", "commit", "-b", "w", "--owner-uid=0", "--owner-gid=0", tree)
		admin(t, tool, sr, "deploy", "--os=os", "w")
		dep := defaultDeployment(t, sr)
		var l []string
		for _, p := range []string{"usr/share/a/gone", "usr/share/a/.ostree-wh.gone", "usr/share/b", "usr/share/.ostree-wh.b", "usr/share/keep"} {
			st, err := os.Lstat(filepath.Join(dep, p))
			if err != nil {
				l = append(l, p+" absent")
				continue
			}
			sys := st.Sys().(*syscall.Stat_t)
			l = append(l, fmt.Sprintf("%s %o rdev=%d %d:%d", p, sys.Mode, sys.Rdev, sys.Uid, sys.Gid))
		}
		got = append(got, strings.Join(l, "\n"))
	}
	if got[0] != got[1] {
		t.Errorf("whiteouts differ:\nostree:\n%s\ngostree:\n%s", got[0], got[1])
	}
	if !strings.Contains(got[1], "usr/share/b 20600 rdev=0") {
		t.Errorf("no whiteout:\n%s", got[1])
	}
}
