package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gostree/gostree/internal/atomicfile"
)

// BootIDPath is where Linux publishes the random id of the current boot.
const BootIDPath = "/proc/sys/kernel/random/boot_id"

var bootIDRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// BootID returns the id of the current boot, as in Report.BootID.
func BootID() (string, error) { return readBootID(BootIDPath) }

func readBootID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if !bootIDRe.MatchString(id) {
		return "", fmt.Errorf("reading the boot id: %s holds %.60q, not a lower-case UUID", path, id)
	}
	return id, nil
}

// reportVersion is the version of the file format written by SaveReport.
const reportVersion = 1

// maxReportSize bounds what LoadReport reads: far more than a report of
// a few hundred checks with full outputs.
const maxReportSize = 32 << 20

// The file format (JSON, version 1). Durations are integer nanoseconds,
// the time is RFC 3339 in UTC.
type fileReport struct {
	Version int         `json:"version"`
	OK      bool        `json:"ok"`
	BootID  string      `json:"boot_id"`
	Time    time.Time   `json:"time"`
	Checks  []fileCheck `json:"checks"`
	Skipped []string    `json:"skipped,omitempty"`
}

type fileCheck struct {
	Name       string `json:"name"`
	Required   bool   `json:"required"`
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
	DurationNS int64  `json:"duration_ns"`
	Output     string `json:"output,omitempty"`
}

// MarshalReport encodes r in the file format SaveReport writes.
func MarshalReport(r Report) ([]byte, error) {
	if err := validReport(r); err != nil {
		return nil, err
	}
	f := fileReport{Version: reportVersion, OK: r.OK, BootID: r.BootID, Time: r.Time.UTC(), Checks: []fileCheck{}, Skipped: r.Skipped}
	for _, c := range r.Checks {
		f.Checks = append(f.Checks, fileCheck{Name: c.Name, Required: c.Required, OK: c.OK, Error: c.Err, DurationNS: int64(c.Duration), Output: c.Output})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // output is for people and jq, not for HTML
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encoding the health report: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseReport decodes a report written by SaveReport, and refuses one
// that is malformed, of another format version, or inconsistent (OK while
// a required check failed, a failed check without a reason, an output
// longer than MaxOutput).
func ParseReport(b []byte) (Report, error) {
	var f fileReport
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Report{}, fmt.Errorf("malformed health report: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Report{}, errors.New("malformed health report: data after the JSON object")
	}
	if f.Version != reportVersion {
		return Report{}, fmt.Errorf("health report has format version %d, this gostree reads version %d", f.Version, reportVersion)
	}
	r := Report{OK: f.OK, BootID: f.BootID, Time: f.Time.UTC(), Skipped: f.Skipped}
	if len(r.Skipped) == 0 {
		r.Skipped = nil
	}
	for _, c := range f.Checks {
		r.Checks = append(r.Checks, Check{Name: c.Name, Required: c.Required, OK: c.OK, Err: c.Error, Duration: time.Duration(c.DurationNS), Output: c.Output})
	}
	if err := validReport(r); err != nil {
		return Report{}, err
	}
	return r, nil
}

func validReport(r Report) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("invalid health report: "+format, a...)
	}
	if r.BootID != "" && !bootIDRe.MatchString(r.BootID) {
		return bad("boot id %q is not a lower-case UUID", r.BootID)
	}
	if r.Time.IsZero() {
		return bad("no time")
	}
	if y := r.Time.UTC().Year(); y < 1970 || y > 9999 {
		return bad("time %v out of range", r.Time)
	}
	for i, c := range r.Checks {
		switch {
		case c.Name == "" || strings.ContainsAny(c.Name, "\n\r\x00"):
			return bad("check %d has name %q", i, c.Name)
		case c.OK && c.Err != "":
			return bad("check %s passed but has an error %q", c.Name, c.Err)
		case !c.OK && c.Err == "":
			return bad("check %s failed without a reason", c.Name)
		case c.Duration < 0:
			return bad("check %s has a negative duration", c.Name)
		case len(c.Output) > MaxOutput:
			return bad("check %s has %d bytes of output, more than %d", c.Name, len(c.Output), MaxOutput)
		}
	}
	for _, s := range r.Skipped {
		if s == "" || strings.ContainsAny(s, "\n\r\x00") {
			return bad("skipped entry %q", s)
		}
	}
	if want := len(r.Failed()) == 0; r.OK && !want {
		return bad("marked OK but %s", r.Summary())
	}
	return nil
}

// SaveReport writes r to path atomically (internal/atomicfile), creating
// the directory if needed. The file is mode 0644: a report holds check
// names, exit statuses and output, which health checks must not fill with
// secrets; local users may read it like they read `systemctl status`.
func SaveReport(path string, r Report) error {
	b, err := MarshalReport(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("saving the health report: %w", err)
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// LoadReport reads a report saved by SaveReport. A missing file is an
// error satisfying errors.Is(err, fs.ErrNotExist).
func LoadReport(path string) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("loading the health report: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxReportSize+1))
	if err != nil {
		return Report{}, fmt.Errorf("loading the health report %s: %w", path, err)
	}
	if len(b) > maxReportSize {
		return Report{}, fmt.Errorf("loading the health report %s: larger than %d bytes", path, maxReportSize)
	}
	r, err := ParseReport(b)
	if err != nil {
		return Report{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// WaitReport waits until path holds the report of boot bootID (any report
// when bootID is empty) and returns it. A missing file, or a report of
// another boot, is waited out; an unreadable or invalid one is an error.
// It polls (every second at most) until ctx ends, so give ctx a deadline:
// the healthcheck unit may have died without writing a report (check it
// with ShowUnit).
func WaitReport(ctx context.Context, path, bootID string) (Report, error) {
	pause := 50 * time.Millisecond
	last := "no report"
	for {
		r, err := LoadReport(path)
		switch {
		case err == nil && (bootID == "" || r.BootID == bootID):
			return r, nil
		case err == nil:
			last = fmt.Sprintf("a report of boot %q", r.BootID)
		case !errors.Is(err, fs.ErrNotExist):
			return Report{}, err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Report{}, fmt.Errorf("waiting for the health report of boot %q in %s (found %s): %w", bootID, path, last, ctx.Err())
		}
		if pause *= 2; pause > time.Second {
			pause = time.Second
		}
	}
}
