package reboot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gostree/gostree/heatmeta"
)

// lockServer is a FleetLock server as the protocol describes it: a
// counting semaphore per group with recursive, owned locks. It checks
// every request's shape exactly and remembers what it saw.
type lockServer struct {
	t        *testing.T
	prefix   string         // base path, e.g. "/base"
	slots    map[string]int // group -> max slots (default 1)
	mu       sync.Mutex
	holders  map[string][]string // group -> ids
	requests []string            // "pre-reboot id group" / "steady-state id group"
	bodies   [][]byte
	status   int // when not 0, answer this status with errBody instead
	errBody  string
}

var groupPattern = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)

func (s *lockServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, kind, value string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"kind": kind, "value": value})
	}
	op, ok := strings.CutPrefix(r.URL.Path, s.prefix+"/v1/")
	if !ok || (op != "pre-reboot" && op != "steady-state") {
		s.t.Errorf("lock server: request to %s", r.URL.Path)
		fail(404, "not_found", "no such endpoint")
		return
	}
	if r.Method != http.MethodPost {
		s.t.Errorf("lock server: method %s", r.Method)
		fail(405, "bad_method", "POST only")
		return
	}
	if got := r.Header.Values("fleet-lock-protocol"); len(got) != 1 || got[0] != "true" {
		s.t.Errorf("lock server: fleet-lock-protocol header %q", got)
		fail(400, "missing_header", "fleet-lock-protocol header missing")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req struct {
		ClientParams *struct {
			ID    *string `json:"id"`
			Group *string `json:"group"`
		} `json:"client_params"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() || req.ClientParams == nil || req.ClientParams.ID == nil ||
		req.ClientParams.Group == nil || *req.ClientParams.ID == "" || !groupPattern.MatchString(*req.ClientParams.Group) {
		s.t.Errorf("lock server: bad body %q (%v)", body, err)
		fail(400, "bad_body", "malformed client_params")
		return
	}
	id, group := *req.ClientParams.ID, *req.ClientParams.Group
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, op+" "+id+" "+group)
	s.bodies = append(s.bodies, body)
	if s.status != 0 {
		w.WriteHeader(s.status)
		io.WriteString(w, s.errBody)
		return
	}
	if s.holders == nil {
		s.holders = map[string][]string{}
	}
	held := s.holders[group]
	switch op {
	case "pre-reboot":
		if slices.Contains(held, id) {
			break // recursive
		}
		max := s.slots[group]
		if max == 0 {
			max = 1
		}
		if len(held) >= max {
			fail(409, "failed_lock_semaphore_full", "semaphore currently full, all slots are locked already")
			return
		}
		s.holders[group] = append(held, id)
	case "steady-state":
		s.holders[group] = slices.DeleteFunc(held, func(h string) bool { return h == id })
	}
	w.WriteHeader(http.StatusOK)
}

func (s *lockServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func startLockServer(t *testing.T, prefix string, slots map[string]int) (*lockServer, *httptest.Server) {
	ls := &lockServer{t: t, prefix: prefix, slots: slots}
	srv := httptest.NewServer(ls) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return ls, srv
}

func lockGate(t *testing.T, url, group, id string) Gate {
	t.Helper()
	g, err := New(heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: url, FleetLockGroup: group}, Options{NodeID: id})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func mustCheck(t *testing.T, g Gate, want bool) Decision {
	t.Helper()
	d, err := g.Check(context.Background(), time.Now())
	if err != nil {
		t.Fatalf("%s: Check: %v", g.Describe(), err)
	}
	if d.Now != want {
		t.Fatalf("%s: Now = %v, want %v (%s)", g.Describe(), d.Now, want, d.Reason)
	}
	if !d.Next.IsZero() {
		t.Fatalf("fleet lock decision with Next %v", d.Next)
	}
	return d
}

func TestFleetLockSemaphore(t *testing.T) {
	ls, srv := startLockServer(t, "/base", map[string]int{"workers": 2})
	ctx := context.Background()
	a := lockGate(t, srv.URL+"/base", "workers", "node-a")
	b := lockGate(t, srv.URL+"/base/", "workers", "node-b") // trailing slash: same endpoints
	c := lockGate(t, srv.URL+"/base", "workers", "node-c")
	d := lockGate(t, srv.URL+"/base", "", "node-d") // group "default", its own semaphore

	mustCheck(t, a, true)
	mustCheck(t, a, true) // recursive: a holds its slot, asking again is fine
	mustCheck(t, b, true)
	refused := mustCheck(t, c, false)
	for _, want := range []string{"semaphore currently full, all slots are locked already", "failed_lock_semaphore_full", "409"} {
		if !strings.Contains(refused.Reason, want) {
			t.Fatalf("refusal reason %q lacks %q", refused.Reason, want)
		}
	}
	mustCheck(t, d, true)

	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := c.Release(ctx); err != nil { // not holding: UnlockIfHeld is fine
		t.Fatal(err)
	}
	mustCheck(t, c, true)
	mustCheck(t, a, false)

	want := []string{
		"pre-reboot node-a workers", "pre-reboot node-a workers", "pre-reboot node-b workers",
		"pre-reboot node-c workers", "pre-reboot node-d default",
		"steady-state node-a workers", "steady-state node-a workers", "steady-state node-c workers",
		"pre-reboot node-c workers", "pre-reboot node-a workers",
	}
	if got := ls.seen(); !slices.Equal(got, want) {
		t.Fatalf("requests:\n%q\nwant\n%q", got, want)
	}
	// The body is exactly the protocol's JSON object.
	if got, want := string(ls.bodies[0]), `{"client_params":{"id":"node-a","group":"workers"}}`; got != want {
		t.Fatalf("body %s, want %s", got, want)
	}
	if got := a.Describe(); got != "fleet_lock "+srv.URL+"/base group workers id node-a" {
		t.Fatalf("Describe = %q", got)
	}
}

func TestFleetLockErrors(t *testing.T) {
	ls, srv := startLockServer(t, "", nil)
	g := lockGate(t, srv.URL, "", "n1")
	ctx := context.Background()
	set := func(code int, body string) {
		ls.mu.Lock()
		ls.status, ls.errBody = code, body
		ls.mu.Unlock()
	}
	check := func(t *testing.T) (*Error, error) {
		t.Helper()
		d, err := g.Check(ctx, time.Now())
		if err == nil {
			t.Fatalf("no error: %+v", d)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("not an *Error: %v", err)
		}
		return e, err
	}

	t.Run("503 with FleetLock error body is retryable", func(t *testing.T) {
		set(503, `{"kind":"etcd_unavailable","value":"cannot reach etcd"}`)
		e, err := check(t)
		if !IsRetryable(err) || e.StatusCode != 503 || e.Kind != "etcd_unavailable" || e.Message != "cannot reach etcd" || e.Op != "pre-reboot" {
			t.Fatalf("%#v", e)
		}
		if !strings.Contains(err.Error(), srv.URL+"/v1/pre-reboot: HTTP 503: etcd_unavailable: cannot reach etcd") {
			t.Fatalf("message %q", err)
		}
	})
	t.Run("500 with an HTML body", func(t *testing.T) {
		set(500, "<html><body>oops</body></html>")
		e, err := check(t)
		if !IsRetryable(err) || e.Kind != "generic_http_500" || e.Message != "Internal Server Error" {
			t.Fatalf("%#v", e)
		}
	})
	t.Run("4xx with a plain body is a refusal", func(t *testing.T) {
		set(403, "group not allowed\n")
		d, err := g.Check(ctx, time.Now())
		if err != nil || d.Now || d.Reason != "lock server refused a reboot slot (HTTP 403, generic_http_403): group not allowed" {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("4xx body with control characters is sanitized", func(t *testing.T) {
		set(429, `{"kind":"slow_down","value":"wait\u001b[2J\nplease"}`)
		d, err := g.Check(ctx, time.Now())
		if err != nil || d.Now || !strings.Contains(d.Reason, "wait?[2J?please") {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("200 only is success", func(t *testing.T) {
		set(204, "")
		e, err := check(t)
		if IsRetryable(err) || e.StatusCode != 204 || !strings.Contains(err.Error(), "FleetLock success is 200") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("steady-state refused is a permanent error", func(t *testing.T) {
		set(400, `{"kind":"bad_group","value":"unknown group"}`)
		err := g.Release(ctx)
		var e *Error
		if !errors.As(err, &e) || IsRetryable(err) || e.Op != "steady-state" || e.StatusCode != 400 || e.Message != "unknown group" {
			t.Fatalf("%v", err)
		}
	})
	t.Run("steady-state 502 is retryable", func(t *testing.T) {
		set(502, "")
		if err := g.Release(ctx); !IsRetryable(err) {
			t.Fatalf("%v", err)
		}
	})
	set(0, "")
	mustCheck(t, g, true)
}

func TestFleetLockRedirectNotFollowed(t *testing.T) {
	ls, target := startLockServer(t, "", nil)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	g := lockGate(t, redirect.URL, "", "n1")
	_, err := g.Check(context.Background(), time.Now())
	var e *Error
	if !errors.As(err, &e) || IsRetryable(err) || e.StatusCode != 307 || !strings.Contains(err.Error(), "redirected to "+target.URL) {
		t.Fatalf("%v", err)
	}
	if got := ls.seen(); len(got) != 0 {
		t.Fatalf("the redirect target saw %q", got)
	}
}

func TestFleetLockTransportErrors(t *testing.T) {
	// Nothing listens on a closed server's port.
	_, srv := startLockServer(t, "", nil)
	url := srv.URL
	srv.Close()
	g := lockGate(t, url, "", "n1")
	_, err := g.Check(context.Background(), time.Now())
	var e *Error
	if !errors.As(err, &e) || !IsRetryable(err) || e.StatusCode != 0 || e.Err == nil {
		t.Fatalf("connection refused: %v", err)
	}
	if err := g.Release(context.Background()); !IsRetryable(err) {
		t.Fatalf("release, connection refused: %v", err)
	}

	// A server that does not answer: our request timeout is retryable,
	// the caller's cancellation is not.
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hang.Close()
	defer close(stop)
	g2, err := New(heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: hang.URL},
		Options{NodeID: "n1", RequestTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g2.Check(context.Background(), time.Now())
	if !IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = g2.Check(ctx, time.Now())
	if err == nil || IsRetryable(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestFleetLockTLS(t *testing.T) {
	ls := &lockServer{t: t}
	srv := httptest.NewUnstartedServer(ls)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	// The default client verifies the certificate: an unknown CA is a
	// permanent error, and nothing reached the server's handler.
	g := lockGate(t, srv.URL, "", "n1")
	_, err := g.Check(context.Background(), time.Now())
	if err == nil || IsRetryable(err) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unverified TLS: %v", err)
	}
	// A client that trusts the server's CA works.
	g, err = New(heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: srv.URL + "/"},
		Options{NodeID: "n1", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, g, true)
	if got := ls.seen(); !slices.Equal(got, []string{"pre-reboot n1 default"}) {
		t.Fatalf("requests %q", got)
	}
	// New did not change the caller's client.
	if srv.Client().CheckRedirect != nil {
		t.Fatal("caller's http.Client modified")
	}
}

func TestFleetLockCredentialsNotShown(t *testing.T) {
	var user, pass string
	ls := &lockServer{t: t}
	wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ = r.BasicAuth()
		ls.ServeHTTP(w, r)
	}))
	defer wrapped.Close()
	u := strings.Replace(wrapped.URL, "http://", "http://agent:s3cret@", 1)
	g := lockGate(t, u, "", "n1")
	mustCheck(t, g, true)
	if user != "agent" || pass != "s3cret" {
		t.Fatalf("basic auth %q %q", user, pass)
	}
	if strings.Contains(g.Describe(), "s3cret") {
		t.Fatalf("Describe shows the password: %s", g.Describe())
	}
	ls.mu.Lock()
	ls.status = 503
	ls.mu.Unlock()
	_, err := g.Check(context.Background(), time.Now())
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password or is nil: %v", err)
	}
}

func TestParseLockError(t *testing.T) {
	tests := []struct {
		in   string
		want LockError
		err  string
	}{
		{`{"kind":"failed_lock_semaphore_full","value":"semaphore currently full, all slots are locked already"}`,
			LockError{"failed_lock_semaphore_full", "semaphore currently full, all slots are locked already"}, ""},
		{`{"kind":"k","value":"v","extra":1}`, LockError{"k", "v"}, ""},
		{`{"kind":"k"}`, LockError{}, `no "value"`},
		{`{"kind":"","value":"v"}`, LockError{}, `"kind" is empty`},
		{`{"kind":1,"value":"v"}`, LockError{}, `"kind" is not a string`},
		{`["kind"]`, LockError{}, "not a JSON object"},
		{`null`, LockError{}, "not a JSON object"},
		{``, LockError{}, "not a JSON object"},
	}
	for _, tt := range tests {
		got, err := ParseLockError([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v %v", tt.in, got, err)
		}
	}
}

func ExampleNew_fleetLock() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("fleet-lock-protocol") != "true" {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	g, err := New(heatmeta.RebootPolicy{Mode: heatmeta.RebootFleetLock, FleetLockURL: srv.URL, FleetLockGroup: "workers"},
		Options{NodeID: "c988d2509fdf4cdcbed39037c56406fb"})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := g.Check(context.Background(), time.Now())
	fmt.Println(d.Now, d.Reason, err)
	fmt.Println(g.Release(context.Background()))
	// Output:
	// true fleet lock slot held (group workers, id c988d2509fdf4cdcbed39037c56406fb) <nil>
	// <nil>
}
