package agent

import (
	"os"
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("../etc/gostree/agent.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("poll_interval: 5s\nreboot:\n  policy: window\n  windows:\n    - {days: [Sat], start_time: \"02:00\", length_minutes: 60}\n"))
	f.Add([]byte("metadata:\n  collectors: [local]\n  local:\n    path: [/tmp]\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config Validate refuses: %v", err)
		}
	})
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"job":{"key":"deployment:x","phase":"reboot","desired":{"origin":"deployment","commit":"` +
		"f0e0bf7f58759a0db40118cb9edbdf43e19999adb5d046b9cb5e5800837c8e4c" + `","payload":{},"reboot":{},"signal":{"transport":"NO_SIGNAL"}},"started":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"version":1,"blocked":{"commit":"` + "f0e0bf7f58759a0db40118cb9edbdf43e19999adb5d046b9cb5e5800837c8e4c" + `","key":"k","reason":"r","time":"2026-01-01T00:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseState(b)
		if err != nil {
			return
		}
		dir := t.TempDir()
		if err := SaveState(dir, st); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadState(dir); err != nil {
			t.Fatalf("a state that parsed does not round-trip: %v", err)
		}
	})
}
