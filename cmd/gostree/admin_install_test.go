package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dumpPartition copies the partition at off (n bytes) of disk out and
// extracts its ext4 file system with debugfs (no mount needed).
func dumpPartition(t *testing.T, disk string, off, n int64) string {
	t.Helper()
	dir := t.TempDir()
	part := filepath.Join(dir, "part.img")
	in, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, off, n)); err != nil {
		t.Fatal(err)
	}
	out.Close()
	fsDir := filepath.Join(dir, "fs")
	os.Mkdir(fsDir, 0o755)
	if b, err := exec.Command("debugfs", "-R", "rdump / "+fsDir, part).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v: %s", err, b)
	}
	return fsDir
}

func readText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAdminInstall(t *testing.T) {
	requireSysrootTests(t)
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (Debian e2fsprogs)", tool)
			}
			t.Skipf("%s is missing (Debian e2fsprogs)", tool)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "ostree"), 0o755)
	ostreeCmd(t, "--repo="+src+"/ostree/repo", "init", "--mode=archive")
	tree := filepath.Join(dir, "tree")
	makeVectorTree(t, tree, 1)
	c := commitVector(t, src, tree, 1)
	repo := src + "/ostree/repo"
	grubLib := "/usr/lib/grub/i386-pc"
	bootloader := "none"
	if _, err := os.Stat(filepath.Join(grubLib, "boot.img")); err == nil {
		bootloader = "grub-bios"
	} else {
		t.Log("no GRUB for BIOS (grub-pc-bin, scripts/deps.sh --vm): testing --bootloader=none only")
	}
	custom := filepath.Join(dir, "custom.cfg")
	writeFile(t, custom, "set timeout=1\n", 0o644)
	disk := filepath.Join(dir, "disk.img")
	out := gostree(t, "admin", "install", "--os=testos", "--karg=root=LABEL=root", "--karg=rw", "--size=96M", "--boot-size=16M",
		"--bootloader="+bootloader, "--grub-custom="+custom, repo, "testos/stable", disk)
	if !strings.Contains(out, "Installed "+c+".0 (testos/stable) of testos into "+disk) {
		t.Errorf("output: %q", out)
	}
	if st, err := os.Stat(disk); err != nil || st.Size() != 96<<20 {
		t.Fatalf("image: %v, %v", st, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".gostree-install-*")); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}

	// The partition table.
	f, _ := os.Open(disk)
	mbr := make([]byte, 512)
	f.ReadAt(mbr, 0)
	f.Close()
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Fatal("no MBR signature")
	}
	type part struct {
		boot          byte
		typ           byte
		start, length uint32
	}
	p := func(i int) part {
		e := mbr[446+16*i:]
		return part{e[0], e[4], binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])}
	}
	if got, want := p(0), (part{0x80, 0x83, 2048, 16 << 11}); got != want {
		t.Errorf("p1 %+v, want %+v", got, want)
	}
	if got, want := p(1), (part{0, 0x83, 2048 + 16<<11, (96 - 1 - 16) << 11}); got != want {
		t.Errorf("p2 %+v, want %+v", got, want)
	}
	if sf, err := exec.LookPath("sfdisk"); err == nil {
		b, err := exec.Command(sf, "--dump", disk).CombinedOutput()
		if err != nil || !strings.Contains(string(b), "start=        2048, size=       32768, type=83, bootable") {
			t.Errorf("sfdisk --dump: %v\n%s", err, b)
		}
	}

	// /boot: the BLS entry for the kernel arguments, the kernel.
	boot := dumpPartition(t, disk, 2048*512, 16<<20)
	if l, _ := os.Readlink(filepath.Join(boot, "loader")); l != "loader.1" {
		t.Errorf("boot/loader -> %q", l)
	}
	entry := readText(t, filepath.Join(boot, "loader.1/entries/ostree-1-testos.conf"))
	if !strings.Contains(entry, "options root=LABEL=root rw ostree=/ostree/boot.1/testos/"+bcV1+"/0\n") {
		t.Errorf("entry:\n%s", entry)
	}
	if got := readText(t, filepath.Join(boot, "ostree/testos-"+bcV1+"/vmlinuz-5.10.0-test")); got != "KERNEL-IMAGE-v1\n" {
		t.Errorf("kernel: %q", got)
	}
	// root: the deployment, its merged /etc and origin, the repository, an empty /boot.
	root := dumpPartition(t, disk, (2048+16<<11)*512, (96-17)<<20)
	dep := filepath.Join(root, "ostree/deploy/testos/deploy", c+".0")
	if got := readText(t, filepath.Join(dep, "etc/a.conf")); got != "default-a\n" {
		t.Errorf("deployment /etc/a.conf: %q", got)
	}
	if got := readText(t, dep+".origin"); got != "[origin]\nrefspec=testos/stable\n" {
		t.Errorf("origin: %q", got)
	}
	if cfg := readText(t, filepath.Join(root, "ostree/repo/config")); strings.Contains(cfg, "fsync") || !strings.Contains(cfg, "mode=bare") {
		t.Errorf("image repository config:\n%s", cfg)
	}
	if ents, err := os.ReadDir(filepath.Join(root, "boot")); err != nil || len(ents) != 0 {
		t.Errorf("root's /boot mount point: %v, %v", ents, err)
	}
	if l, _ := os.Readlink(filepath.Join(root, "ostree/boot.1/testos", bcV1, "0")); l != "../../../deploy/testos/deploy/"+c+".0" {
		t.Errorf("bootlink -> %q", l)
	}

	if bootloader == "grub-bios" {
		if l, _ := os.Readlink(filepath.Join(boot, "grub/grub.cfg")); l != "../loader/grub.cfg" {
			t.Errorf("boot/grub/grub.cfg -> %q", l)
		}
		cfg := readText(t, filepath.Join(boot, "loader.1/grub.cfg"))
		if !strings.Contains(cfg, "linux '/ostree/testos-"+bcV1+"/vmlinuz-5.10.0-test' 'root=LABEL=root' 'rw' 'ostree=/ostree/boot.1/testos/"+bcV1+"/0'") {
			t.Errorf("grub.cfg:\n%s", cfg)
		}
		if got := readText(t, filepath.Join(boot, "grub/custom.cfg")); got != "set timeout=1\n" {
			t.Errorf("custom.cfg: %q", got)
		}
		if _, err := os.Stat(filepath.Join(boot, "grub/i386-pc/normal.mod")); err != nil {
			t.Error(err)
		}
		bootImg, _ := os.ReadFile(filepath.Join(grubLib, "boot.img"))
		if !bytes.Equal(mbr[:440], bootImg[:440]) {
			t.Error("the MBR does not hold boot.img's code")
		}
		diskboot, _ := os.ReadFile(filepath.Join(grubLib, "diskboot.img"))
		f, _ := os.Open(disk)
		core := make([]byte, 64)
		f.ReadAt(core, 512)
		f.Close()
		if len(diskboot) < 64 || !bytes.Equal(core[:32], diskboot[:32]) {
			t.Error("LBA 1 does not hold core.img (diskboot.img first)")
		}
	}

	// Bad input: clear errors, nothing written.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--os=testos", repo, "testos/stable", disk}, "exists"},
		{[]string{repo, "testos/stable", disk + "2"}, "--os is required"},
		{[]string{"--os=testos", "--size=3T5", repo, "testos/stable", disk + "2"}, `invalid size "3T5"`},
		{[]string{"--os=testos", "--size=64M", repo, "testos/stable", disk + "2"}, "less than 64 MiB"},
		{[]string{"--os=testos", "--bootloader=lilo", repo, "testos/stable", disk + "2"}, "grub-bios or none"},
		{[]string{"--os=testos", "--bootloader=none", "--size=96M", "--boot-size=16M", repo, "no/such/ref", disk + "2"}, "no/such/ref"},
	} {
		msg := gostreeFails(t, append([]string{"admin", "install"}, tc.args...)...)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("install %v: %q does not say %q", tc.args, msg, tc.want)
		}
		if _, err := os.Stat(disk + "2"); err == nil {
			t.Errorf("install %v left an image behind", tc.args)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".gostree-install-*")); len(left) != 0 {
		t.Errorf("staging left behind after failures: %v", left)
	}
}
