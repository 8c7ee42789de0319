package reboot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gostree/gostree/heatmeta"
)

func FuzzParseUtmp(f *testing.F) {
	f.Add(encodeUtmp(UtmpEntry{Type: UtmpUserProcess, PID: 1234, Line: "pts/1", ID: "ts/1", User: "alice", Host: "example.org",
		Time: time.Unix(1790000000, 250000000), Addr: netip.MustParseAddr("192.0.2.1")}))
	two := append(encodeUtmp(UtmpEntry{Type: UtmpBootTime, Line: "~", User: "reboot"}),
		encodeUtmp(UtmpEntry{Type: UtmpDeadProcess, Line: "tty1", Addr: netip.MustParseAddr("2001:db8::1")})...)
	f.Add(two)
	f.Add(two[:UtmpRecordSize+7])
	f.Add(encodeUtmp(UtmpEntry{Type: UtmpUserProcess, User: strings.Repeat("u", 32), Line: strings.Repeat("l", 32), Host: strings.Repeat("h", 256), ID: "abcd"}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseUtmp(b)
		if len(entries) != len(b)/UtmpRecordSize {
			t.Fatalf("%d records from %d bytes", len(entries), len(b))
		}
		if (err != nil) != (len(b)%UtmpRecordSize != 0) {
			t.Fatalf("error %v for %d bytes", err, len(b))
		}
		for i, e := range entries {
			for _, s := range []string{e.Line, e.ID, e.User, e.Host} {
				if strings.ContainsRune(s, 0) {
					t.Fatalf("record %d: NUL in %q", i, s)
				}
			}
			// Encoding what was read and reading it again gives the same
			// record (the parser loses nothing it reports).
			again, err := ParseUtmp(encodeUtmp(e))
			if err != nil || len(again) != 1 || again[0] != e {
				t.Fatalf("record %d: %+v, again %+v %v", i, e, again, err)
			}
		}
		// userTerminals never yields absolute names or X displays.
		for _, l := range userTerminals(entries) {
			if l == "" || strings.HasPrefix(l, ":") {
				t.Fatalf("terminal %q", l)
			}
		}
	})
}

func FuzzParseLockError(f *testing.F) {
	f.Add([]byte(`{"kind":"failed_lock_semaphore_full","value":"semaphore currently full, all slots are locked already"}`))
	f.Add([]byte(`{"kind":"k","value":"v","extra":[1,2]}`))
	f.Add([]byte(`{"kind":"","value":"v"}`))
	f.Add([]byte(`{"kind":"k","value":null}`))
	f.Add([]byte(`{"kind":"k","kind":"l","value":"\u001b[2J"}`))
	f.Add([]byte(`<html>502 Bad Gateway</html>`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		le, err := ParseLockError(b)
		if err != nil {
			if le != (LockError{}) {
				t.Fatalf("error %v with %+v", err, le)
			}
			return
		}
		if le.Kind == "" || le.Value == "" {
			t.Fatalf("empty member accepted: %+v", le)
		}
		again, err := json.Marshal(le)
		if err != nil {
			t.Fatal(err)
		}
		le2, err := ParseLockError(again)
		if err != nil || le2 != le {
			t.Fatalf("round trip: %+v -> %s -> %+v %v", le, again, le2, err)
		}
		// What reaches a reason or log line is one clean line.
		for _, s := range []string{clip(le.Kind), clip(le.Value)} {
			if strings.ContainsAny(s, "\n\r\x1b\x00") || len([]rune(s)) > 201 {
				t.Fatalf("clip gave %q", s)
			}
		}
	})
}

func FuzzTTYDrivers(f *testing.F) {
	f.Add(sampleDrivers, uint32(136), uint32(5))
	f.Add("serial /dev/ttyS 4 64-95 serial\n", uint32(4), uint32(70))
	f.Add("x /dev/x 4 95-64 serial\n", uint32(4), uint32(70))
	f.Add("pty_master /dev/ptm 128 0-1048575 pty:master\n", uint32(128), uint32(0))
	f.Add("a b c\n\n4 4 4 4 4 4-\n", uint32(4), uint32(4))
	f.Fuzz(func(t *testing.T, drivers string, major, minor uint32) {
		got := ttyDriverHas(drivers, major, minor)
		var kept []string
		found := false
		for _, l := range strings.Split(drivers, "\n") {
			fs := strings.Fields(l)
			if len(fs) >= 5 && fs[len(fs)-1] == "pty:master" {
				continue
			}
			kept = append(kept, l)
			if len(fs) >= 5 {
				if m, err := strconv.ParseUint(fs[len(fs)-3], 10, 32); err == nil && uint32(m) == major {
					found = true
				}
			}
		}
		if got && !found {
			t.Fatalf("%d:%d matched without a driver line of that major in %q", major, minor, drivers)
		}
		// pty masters never count.
		if ttyDriverHas(strings.Join(kept, "\n"), major, minor) != got {
			t.Fatalf("pty:master lines changed the answer for %q", drivers)
		}
		// A line naming exactly this device always counts.
		line := fmt.Sprintf("\nx /dev/x %d %d serial\n", major, minor)
		if !ttyDriverHas(drivers+line, major, minor) {
			t.Fatalf("%d:%d not found after adding %q", major, minor, line)
		}
	})
}

// roundTripper answers every request with a fixed status and body.
type roundTripper struct {
	code int
	body []byte
}

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: rt.code, Body: io.NopCloser(bytes.NewReader(rt.body)), Header: http.Header{}, Request: r}, nil
}

// FuzzFleetLockResponse runs whole lock server answers through Check and
// Release: 200 is a slot, 4xx a refusal with a clean one-line reason, 5xx
// a retryable *Error, anything else a permanent *Error.
func FuzzFleetLockResponse(f *testing.F) {
	f.Add(200, []byte(""))
	f.Add(409, []byte(`{"kind":"failed_lock_semaphore_full","value":"semaphore currently full, all slots are locked already"}`))
	f.Add(404, []byte("404 page not found\n"))
	f.Add(503, []byte(`{"kind":"etcd","value":"\u001b[2Jdown"}`))
	f.Add(302, []byte(""))
	f.Add(204, []byte("{}"))
	f.Add(499, bytes.Repeat([]byte("x"), 70000))
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		if code < 100 || code > 999 {
			return
		}
		g, err := New(heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: "http://lock.invalid/base"},
			Options{NodeID: "n1", HTTPClient: &http.Client{Transport: roundTripper{code, body}}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := g.Check(context.Background(), time.Time{})
		rerr := g.Release(context.Background())
		var e *Error
		switch {
		case code == 200:
			if err != nil || !d.Now || rerr != nil {
				t.Fatalf("200: %+v %v %v", d, err, rerr)
			}
		case code >= 400 && code < 500:
			if err != nil || d.Now || d.Reason == "" || strings.ContainsAny(d.Reason, "\n\r\x1b\x00") || len(d.Reason) > 1000 {
				t.Fatalf("%d: %+v %v", code, d, err)
			}
			if !errors.As(rerr, &e) || IsRetryable(rerr) || e.StatusCode != code {
				t.Fatalf("%d release: %v", code, rerr)
			}
		default:
			if !errors.As(err, &e) || e.StatusCode != code || IsRetryable(err) != (code >= 500) || d != (Decision{}) {
				t.Fatalf("%d: %+v %v", code, d, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x1b\x00") || len(err.Error()) > 1000 {
				t.Fatalf("%d: error %q", code, err)
			}
			if IsRetryable(rerr) != (code >= 500) {
				t.Fatalf("%d release: %v", code, rerr)
			}
		}
	})
}
