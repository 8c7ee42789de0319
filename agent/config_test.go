package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/heatmeta"
)

func TestSampleConfigIsTheDefaults(t *testing.T) {
	cfg, err := LoadConfig("../etc/gostree/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	// the sample spells out what the defaults leave empty
	cfg.Files = nil
	cfg.Metadata = heatmeta.Config{}
	cfg.Reboot.Command = nil
	cfg.Reboot.WarnUsers = nil
	cfg.Deploy.Stage = nil
	cfg.Health.RequiredDir, cfg.Health.WantedDir, cfg.Health.Timeout = "", "", 0
	cfg.Health.RequiredUnits, cfg.Health.WantedUnits = nil, nil
	cfg.Pull.LowSpeedTime = 0
	if !reflect.DeepEqual(cfg, def) {
		t.Fatalf("sample differs from the defaults:\n%+v\n%+v", cfg, def)
	}
}

func TestConfigDropInsAndErrors(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "agent.yaml")
	os.WriteFile(main, []byte("poll_interval: 5s\nreboot:\n  policy: manual\n"), 0o644)
	os.MkdirAll(main+".d", 0o755)
	os.WriteFile(filepath.Join(main+".d", "10-a.yaml"), []byte("poll_interval: 7s\n"), 0o644)
	os.WriteFile(filepath.Join(main+".d", "20-b.yaml"), []byte("reboot:\n  policy: window\n  windows:\n    - {days: [Sat], start_time: \"02:00\", length_minutes: 60}\n  time_zone: Europe/Berlin\n"), 0o644)
	cfg, err := LoadConfig(main)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PollInterval != 7*time.Second || len(cfg.Files) != 3 {
		t.Fatalf("drop-ins: %v %v", cfg.PollInterval, cfg.Files)
	}
	p, err := cfg.RebootPolicy()
	if err != nil || p.Mode != heatmeta.RebootWindow || p.TimeZone != "Europe/Berlin" || len(p.Windows) != 1 || p.Windows[0].Start != 2*time.Hour {
		t.Fatalf("policy %+v %v", p, err)
	}
	bad := []struct{ yaml, want string }{
		{"pol_interval: 5s\n", "field pol_interval not found"},
		{"poll_interval: 100ms\n", "poll_interval"},
		{"state_dir: relative\n", "state_dir"},
		{"remote: \"\"\n", "remote"},
		{"reboot:\n  policy: sometimes\n", "reboot_policy"},
		{"reboot:\n  policy: window\n", "reboot_window"},
		{"reboot:\n  policy: fleet_lock\n  fleet_lock_url: ftp://x\n", "fleet_lock_url"},
		{"log:\n  format: xml\n", "log.format"},
		{"pull:\n  jobs: 0\n", "pull.jobs"},
		{"metadata:\n  collectors: [heat, nope]\n", "nope"},
		{"poll_interval: [1]\n", "line 1"},
	}
	for _, b := range bad {
		_, err := ParseConfig([]byte(b.yaml))
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: error %v, want one naming %q", b.yaml, err, b.want)
		}
	}
}

func TestConfigWithSecretsMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, []byte("metadata:\n  heat:\n    password: hunter2\n"), 0o644)
	os.Chmod(p, 0o644)
	_, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), "secrets") {
		t.Fatalf("world-readable secret config accepted: %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatal("secret in the error")
	}
	os.Chmod(p, 0o600)
	if _, err := LoadConfig(p); err != nil {
		t.Fatal(err)
	}
}

func TestStateVersioning(t *testing.T) {
	for _, b := range []string{`{"version": 2}`, `{"version": 0}`, `{`, `{"version":1,"job":{"phase":"dance","desired":{"commit":"` + strings.Repeat("a", 64) + `"}}}`,
		`{"version":1,"job":{"phase":"pull","desired":{}}}`} {
		if _, err := ParseState([]byte(b)); err == nil {
			t.Errorf("%s accepted", b)
		}
	}
	dir := t.TempDir()
	st := &State{Blocked: &Blocked{Reason: "x"}}
	if err := SaveState(dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil || got.Blocked == nil || got.Blocked.Reason != "x" || got.Version != StateVersion {
		t.Fatalf("%+v %v", got, err)
	}
}
