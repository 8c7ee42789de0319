package reboot

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gostree/gostree/heatmeta"
)

// systemd's own test vector for sd_id128_get_app_specific (src/test/test-id128.c).
func TestAppSpecificIDSystemdVector(t *testing.T) {
	var base, app [16]byte
	hex.Decode(base[:], []byte("51df0b4bc3b04c9780e299b98ca373b8"))
	hex.Decode(app[:], []byte("f03daaeb1c334b43a732172944bf772e"))
	id := appSpecificID(base, app)
	if got, want := hex.EncodeToString(id[:]), "1dee5954e75c4d6fb96cc6c04ca18a86"; got != want {
		t.Fatalf("app-specific id %s, want %s", got, want)
	}
}

// The default node id is what systemd-id128 computes for this machine.
func TestNodeIDMatchesSystemd(t *testing.T) {
	mid, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		t.Skipf("no machine id: %v", err)
	}
	if _, err := exec.LookPath("systemd-id128"); err != nil {
		t.Skip("systemd-id128 not installed (the systemd vector above still checks the derivation)")
	}
	out, err := exec.Command("systemd-id128", "machine-id", "--app-specific="+AppID).Output()
	if err != nil {
		t.Skipf("systemd-id128: %v", err)
	}
	got, err := NodeID(string(mid))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("NodeID %s, systemd-id128 says %s", got, want)
	}
	if strings.Contains(got, strings.TrimSpace(string(mid))) {
		t.Fatal("node id reveals the machine id")
	}
}

func TestNodeIDErrors(t *testing.T) {
	for in, want := range map[string]string{
		"uninitialized\n":                    "uninitialized",
		"":                                   "not 32 hex digits",
		"3d1219c7c4c5404aaa1f6d2a48adfdaX":   "not 32 hex digits",
		"00000000000000000000000000000000\n": "all zeros",
	} {
		if _, err := NodeID(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NodeID(%q) = %v, want %q", in, err, want)
		}
	}
	id, err := NodeID(" 3d1219c7c4c5404aaa1f6d2a48adfda4\n")
	if err != nil || len(id) != 32 || id[12] != '4' {
		t.Fatalf("NodeID = %q, %v (want 32 hex digits, UUID version 4)", id, err)
	}
}

// New reads the machine id only for fleet_lock without a NodeID, and
// says where it looked when that fails.
func TestNewFleetLockNodeID(t *testing.T) {
	dir := t.TempDir()
	p := heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: "https://lock.example/base/"}
	_, err := New(p, Options{MachineIDFile: filepath.Join(dir, "missing")})
	if err == nil || !strings.Contains(err.Error(), "fleet_lock needs a node id") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing machine id: %v", err)
	}
	mid := filepath.Join(dir, "machine-id")
	os.WriteFile(mid, []byte("uninitialized\n"), 0o644)
	if _, err := New(p, Options{MachineIDFile: mid}); err == nil || !strings.Contains(err.Error(), "uninitialized") {
		t.Fatalf("uninitialized machine id: %v", err)
	}
	os.WriteFile(mid, []byte("3d1219c7c4c5404aaa1f6d2a48adfda4\n"), 0o644)
	g, err := New(p, Options{MachineIDFile: mid})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := NodeID("3d1219c7c4c5404aaa1f6d2a48adfda4")
	if d := g.Describe(); d != "fleet_lock https://lock.example/base group default id "+want {
		t.Fatalf("Describe = %q", d)
	}
}
