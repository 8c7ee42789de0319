package sysroot

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestFreezeThawLeavesTheFilesystemWritable freezes and thaws a real ext4
// filesystem (a loop-mounted image, as /boot on its own partition) and
// checks it is writable afterwards.
func TestFreezeThawLeavesTheFilesystemWritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "boot.img")
	mnt := filepath.Join(dir, "boot")
	os.MkdirAll(mnt, 0o755)
	if out, err := exec.Command("truncate", "-s", "16M", img).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount: %v %s", err, out)
		}
		t.Skipf("mount: %v %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(filepath.Join(mnt, "entry.conf"), []byte("title x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := freezeThaw(mnt); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(filepath.Join(mnt, "after"), []byte("x"), 0o644) }()
	if err := <-done; err != nil {
		t.Fatalf("write after thaw: %v", err)
	}
}
