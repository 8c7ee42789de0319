package health

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const bootA = "0f3c6a52-8a55-4bd6-9c2e-41b7c1a0e8a1"
const bootB = "5d2e7b11-3c44-4e8f-a1b2-c3d4e5f60718"

func sampleReport() Report {
	return Report{
		OK:     false,
		BootID: bootA,
		Time:   time.Date(2026, 11, 26, 7, 0, 1, 123456789, time.UTC),
		Checks: []Check{
			{Name: "required.d/10-network", Required: true, OK: true, Output: "ping ok\n", Duration: 1500 * time.Millisecond},
			{Name: "required.d/20-api", Required: true, OK: false, Output: "curl: (7) Failed to connect\n", Err: "exit status 7", Duration: 3 * time.Second},
			{Name: "unit:sshd.service", Required: true, OK: true, Output: "ActiveState=active\n", Duration: 20 * time.Millisecond},
			{Name: "wanted.d/10-ntp", Required: false, OK: false, Err: "timed out after 5m0s", Duration: 5 * time.Minute},
		},
		Skipped: []string{"required.d/README (not executable)"},
	}
}

// The on-disk format is pinned by testdata/report-v1.json: changing it
// must be deliberate (and bump reportVersion).
func TestReportFormat(t *testing.T) {
	golden, err := os.ReadFile("testdata/report-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalReport(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(golden) {
		t.Errorf("MarshalReport:\n%s\nwant testdata/report-v1.json:\n%s", b, golden)
	}
	r, err := ParseReport(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, sampleReport()) {
		t.Errorf("ParseReport:\n%+v\nwant\n%+v", r, sampleReport())
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "gostree-agent", "health.json") // directories created
	want := sampleReport()
	if err := SaveReport(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	got, err := LoadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded\n%+v\nwant\n%+v", got, want)
	}
	// No temporary files left next to it.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries", len(ents))
	}

	// A report straight from Run, with real output, survives too.
	req, wantDir := checkDirs(t)
	script(t, req, "10-x", `printf 'bin\001ary \377 and "quotes" \\ tabs\t\n'; exit 2`)
	r, err := Run(context.Background(), Config{RequiredDir: req, WantedDir: wantDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveReport(path, r); err != nil {
		t.Fatal(err)
	}
	got, err = LoadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("loaded\n%+v\nwant\n%+v", got, r)
	}

	// An invalid report is never written, and the old one stays.
	bad := sampleReport()
	bad.OK = true
	if err := SaveReport(path, bad); err == nil || !strings.Contains(err.Error(), "marked OK but 1 check failed: required.d/20-api (exit status 7)") {
		t.Errorf("saving an inconsistent report: %v", err)
	}
	if got, err := LoadReport(path); err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("old report damaged: %v", err)
	}
}

func TestLoadReportErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadReport(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(dir, "bad.json")
	os.WriteFile(p, []byte(`{"version":1,`), 0o644)
	if _, err := LoadReport(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("truncated file: %v", err)
	}
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, make([]byte, maxReportSize+1), 0o644)
	if _, err := LoadReport(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
}

func TestParseReportRejects(t *testing.T) {
	valid, err := MarshalReport(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	v := string(valid)
	cases := map[string]string{
		"empty":            "",
		"not json":         "hello",
		"version 2":        strings.Replace(v, `"version": 1`, `"version": 2`, 1),
		"no version":       strings.Replace(v, `"version": 1,`, ``, 1),
		"unknown field":    strings.Replace(v, `"ok": false`, `"ok": false, "extra": 1`, 1),
		"trailing data":    v + "{}",
		"ok but failed":    strings.Replace(v, `"ok": false`, `"ok": true`, 1),
		"bad boot id":      strings.Replace(v, bootA, "not-a-uuid", 1),
		"upper boot id":    strings.Replace(v, bootA, strings.ToUpper(bootA), 1),
		"no time":          strings.Replace(v, `"time": "2026-11-26T07:00:01.123456789Z",`, ``, 1),
		"failed no reason": strings.Replace(v, `"error": "exit status 7",`, ``, 1),
		"passed w/ error":  strings.Replace(v, `"name": "unit:sshd.service",`, `"name": "unit:sshd.service", "error": "x",`, 1),
		"empty name":       strings.Replace(v, `"name": "unit:sshd.service"`, `"name": ""`, 1),
		"newline in name":  strings.Replace(v, `"name": "unit:sshd.service"`, `"name": "a\nb"`, 1),
		"negative":         strings.Replace(v, `"duration_ns": 20000000`, `"duration_ns": -1`, 1),
		"huge output":      strings.Replace(v, `"output": "ping ok\n"`, `"output": "`+strings.Repeat("x", MaxOutput+1)+`"`, 1),
		"checks not list":  strings.Replace(v, `"checks": [`, `"checks": {"a": [`, 1),
		"empty skipped":    strings.Replace(v, `"required.d/README (not executable)"`, `""`, 1),
	}
	for name, in := range cases {
		if in == v {
			t.Errorf("%s: the test did not change the input", name)
			continue
		}
		if _, err := ParseReport([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWaitReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "health.json")
	old := sampleReport()
	old.BootID = bootB
	if err := SaveReport(path, old); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := WaitReport(ctx, path, bootA)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), bootB) {
		t.Fatalf("report of another boot: %v", err)
	}

	done := make(chan struct{})
	var got Report
	var werr error
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	go func() {
		got, werr = WaitReport(ctx2, path, bootA)
		close(done)
	}()
	if err := SaveReport(path, sampleReport()); err != nil {
		t.Fatal(err)
	}
	<-done
	if werr != nil || got.BootID != bootA {
		t.Errorf("WaitReport: %v %+v", werr, got)
	}
	os.WriteFile(path, []byte("garbage"), 0o644)
	if _, err := WaitReport(context.Background(), path, bootA); err == nil {
		t.Error("garbage accepted")
	}
}

func TestBootID(t *testing.T) {
	id, err := BootID()
	if err != nil {
		t.Fatal(err)
	}
	if !bootIDRe.MatchString(id) {
		t.Errorf("%q", id)
	}
	// Config.BootIDPath stands in for the kernel's file.
	dir := t.TempDir()
	p := filepath.Join(dir, "boot_id")
	os.WriteFile(p, []byte(bootB+"\n"), 0o644)
	r, err := Run(context.Background(), Config{RequiredDir: filepath.Join(dir, "none"), WantedDir: filepath.Join(dir, "none"), BootIDPath: p})
	if err != nil || r.BootID != bootB {
		t.Errorf("boot id %q (%v), want %q", r.BootID, err, bootB)
	}
	os.WriteFile(p, []byte("garbage\n"), 0o644)
	if _, err := readBootID(p); err == nil || !strings.Contains(err.Error(), "garbage") {
		t.Errorf("garbage boot id: %v", err)
	}
	r, _ = Run(context.Background(), Config{RequiredDir: filepath.Join(dir, "none"), WantedDir: filepath.Join(dir, "none"), BootIDPath: p})
	if r.BootID != "" {
		t.Errorf("boot id %q from garbage", r.BootID)
	}
}

func FuzzParseReport(f *testing.F) {
	golden, err := os.ReadFile("testdata/report-v1.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"version":1,"ok":true,"boot_id":"","time":"2026-01-01T00:00:00Z","checks":[]}`))
	f.Add([]byte(`{"version":1,"ok":true,"boot_id":"` + bootA + `","time":"2026-01-01T00:00:00+02:00","checks":null,"skipped":["a/b (hidden file)"]}`))
	f.Add([]byte(`{"version":1,"ok":false,"boot_id":"","time":"2026-01-01T00:00:00Z","checks":[{"name":"x","required":true,"ok":false,"error":"e\u00e9\ud800","duration_ns":5,"output":"\u0000\ufffd"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"ok":true} trailing`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			return
		}
		// What was accepted is consistent and survives a round trip.
		if r.OK != (len(r.Failed()) == 0) && r.OK {
			t.Fatalf("accepted OK report with failed checks: %+v", r)
		}
		out, err := MarshalReport(r)
		if err != nil {
			t.Fatalf("accepted report cannot be written: %v", err)
		}
		r2, err := ParseReport(out)
		if err != nil {
			t.Fatalf("written report cannot be read: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the report:\n%+v\n%+v", r, r2)
		}
		_ = r.Summary()
	})
}
