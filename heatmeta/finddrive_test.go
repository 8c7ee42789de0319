package heatmeta

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindConfigDrive(t *testing.T) {
	dir := t.TempDir()
	byLabel := filepath.Join(dir, "by-label")
	os.Mkdir(byLabel, 0o755)
	dev := filepath.Join(dir, "sr0")
	writeFile(t, dev, "", 0o600)
	mounts := filepath.Join(dir, "mounts")
	writeFile(t, mounts, "/dev/vda1 / ext4 rw 0 0\n", 0o600)
	if d, m, err := findConfigDrive(byLabel, mounts); d != "" || m != "" || err != nil {
		t.Fatalf("no drive: %q %q %v", d, m, err)
	}
	os.Symlink("../sr0", filepath.Join(byLabel, "config-2"))
	if d, m, err := findConfigDrive(byLabel, mounts); d != dev || m != "" || err != nil {
		t.Fatalf("unmounted: %q %q %v", d, m, err)
	}
	writeFile(t, mounts, "/dev/vda1 / ext4 rw 0 0\n"+dev+" /mnt/config\\040drive iso9660 ro 0 0\n", 0o600)
	if d, m, err := findConfigDrive(byLabel, mounts); d != dev || m != "/mnt/config drive" || err != nil {
		t.Fatalf("mounted: %q %q %v", d, m, err)
	}
}
