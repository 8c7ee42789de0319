package reboot

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// FleetLock protocol constants (Zincati docs/development/fleetlock/protocol.md).
const (
	PreRebootPath   = "/v1/pre-reboot"   // RecursiveLock: take a reboot slot
	SteadyStatePath = "/v1/steady-state" // UnlockIfHeld: give it back
	ProtocolHeader  = "fleet-lock-protocol"
	DefaultGroup    = "default"
)

// DefaultRequestTimeout bounds one FleetLock request (Options.RequestTimeout).
const DefaultRequestTimeout = 30 * time.Second

// maxBody is how much of a lock server's response is read.
const maxBody = 64 << 10

var groupRE = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)

// Error is a failed FleetLock request: no answer (StatusCode 0), a server
// error (5xx), or an answer that is neither success nor a refusal. A
// refusal (4xx) is not an Error but a Decision with Now false.
type Error struct {
	Op         string // "pre-reboot" or "steady-state"
	URL        string // the endpoint, credentials removed
	StatusCode int    // 0: no HTTP response
	Kind       string // the server's error kind, if it sent one
	Message    string // the server's error value, if it sent one
	Retryable  bool   // worth asking again later (network, 5xx)
	Err        error  // the transport error, if any
}

func (e *Error) Error() string {
	s := "fleet lock " + e.Op + " " + e.URL
	if e.StatusCode != 0 {
		s += fmt.Sprintf(": HTTP %d", e.StatusCode)
	}
	if e.Kind != "" {
		s += ": " + e.Kind
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is a transient FleetLock failure
// (network, timeout, 5xx) worth retrying with backoff. Everything else
// (a misconfigured URL, a redirect, a caller's cancelled context) is
// permanent.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// LockError is the error body a FleetLock server sends with a 4xx or 5xx.
type LockError struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// ParseLockError reads a FleetLock error body: a JSON object with
// non-empty string members "kind" and "value" (other members ignored).
func ParseLockError(body []byte) (LockError, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return LockError{}, errors.New("error body is not a JSON object")
	}
	var le LockError
	for _, f := range []struct {
		name string
		dst  *string
	}{{"kind", &le.Kind}, {"value", &le.Value}} {
		v, ok := raw[f.name]
		if !ok {
			return LockError{}, fmt.Errorf("error body has no %q", f.name)
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return LockError{}, fmt.Errorf("error body: %q is not a string", f.name)
		}
		if *f.dst == "" {
			return LockError{}, fmt.Errorf("error body: %q is empty", f.name)
		}
	}
	return le, nil
}

// fleetLock is the fleet_lock policy.
type fleetLock struct {
	base    *url.URL // path without trailing slash
	group   string
	id      string
	body    []byte
	client  *http.Client
	timeout time.Duration
}

func newFleetLock(rawURL, group string, o Options) (*fleetLock, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("reboot policy fleet_lock: bad lock server URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("reboot policy fleet_lock: lock server URL %q: want http:// or https:// with a host", clip(u.Redacted()))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("reboot policy fleet_lock: lock server URL %q: a base URL takes no query or fragment", clip(u.Redacted()))
	}
	if group == "" {
		group = DefaultGroup
	}
	if !groupRE.MatchString(group) {
		return nil, fmt.Errorf("reboot policy fleet_lock: group %q: only letters, digits, '.' and '-' are allowed", clip(group))
	}
	id := o.NodeID
	if id == "" {
		if id, err = readNodeID(o.MachineIDFile); err != nil {
			return nil, err
		}
	}
	body, err := requestBody(id, group)
	if err != nil {
		return nil, err
	}
	base := *u
	base.Path = strings.TrimRight(u.Path, "/")
	base.RawPath = ""
	c := http.DefaultClient
	if o.HTTPClient != nil {
		c = o.HTTPClient
	}
	cc := *c
	// The protocol header exists so that a request reaches the lock
	// server only when meant for it; a redirect is an answer, not a hop.
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	timeout := o.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	return &fleetLock{base: &base, group: group, id: id, body: body, client: &cc, timeout: timeout}, nil
}

// requestBody is {"client_params":{"id":ID,"group":GROUP}}.
func requestBody(id, group string) ([]byte, error) {
	if id == "" || strings.ContainsAny(id, "\x00") || len(id) > 256 {
		return nil, fmt.Errorf("reboot policy fleet_lock: node id %q: want 1 to 256 characters", clip(id))
	}
	type params struct {
		ID    string `json:"id"`
		Group string `json:"group"`
	}
	return json.Marshal(struct {
		ClientParams params `json:"client_params"`
	}{params{id, group}})
}

// endpoint is the base URL with path appended: the base's own path is
// kept ("https://lock.example/base" gives .../base/v1/pre-reboot).
func (f *fleetLock) endpoint(path string) *url.URL {
	u := *f.base
	u.Path += path
	return &u
}

// answer is a lock server's answer that is not an error: 200 or a 4xx
// refusal.
type answer struct {
	code       int
	kind, text string // of a refusal, clipped
}

// post sends one FleetLock request. 200 and 4xx are answers; no answer,
// 5xx, redirects and other codes are *Error.
func (f *fleetLock) post(ctx context.Context, op, path string) (answer, error) {
	u := f.endpoint(path)
	fail := func(e *Error) (answer, error) { e.Op, e.URL = op, u.Redacted(); return answer{}, e }
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u.String(), bytes.NewReader(f.body))
	if err != nil {
		return fail(&Error{Err: err})
	}
	req.Header.Set(ProtocolHeader, "true")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		// The caller giving up is not the server's fault; our own
		// timeout or a network error may go away.
		return fail(&Error{Err: err, Retryable: ctx.Err() == nil && retryableTransport(err)})
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	if code == http.StatusOK {
		return answer{code: code}, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	le, perr := ParseLockError(body)
	if perr != nil || rerr != nil {
		// Zincati's stand-in kind when the body is not a FleetLock error;
		// a short plain-text body is still worth showing.
		le = LockError{Kind: fmt.Sprintf("generic_http_%d", code), Value: http.StatusText(code)}
		if t := strings.TrimSpace(string(body)); rerr == nil && t != "" && len(t) <= 200 && !strings.HasPrefix(t, "<") {
			le.Value = t
		}
		if le.Value == "" {
			le.Value = "(no error description)"
		}
	}
	kind, text := clip(le.Kind), clip(le.Value)
	switch {
	case code >= 500:
		return fail(&Error{StatusCode: code, Kind: kind, Message: text, Retryable: true})
	case code >= 400:
		return answer{code: code, kind: kind, text: text}, nil
	case code >= 300:
		where := ""
		if loc := resp.Header.Get("Location"); loc != "" {
			where = " to " + clip(loc)
		}
		return fail(&Error{StatusCode: code, Message: "redirected" + where + "; FleetLock requests are not redirected, configure the final URL"})
	}
	return fail(&Error{StatusCode: code, Message: "unexpected status (FleetLock success is 200)"})
}

// Check tries to take a reboot slot; a refusal (4xx) is Now false with
// the server's message.
func (f *fleetLock) Check(ctx context.Context, _ time.Time) (Decision, error) {
	a, err := f.post(ctx, "pre-reboot", PreRebootPath)
	if err != nil {
		return Decision{}, err
	}
	if a.code != http.StatusOK {
		return Decision{Reason: fmt.Sprintf("lock server refused a reboot slot (HTTP %d, %s): %s", a.code, a.kind, a.text)}, nil
	}
	return Decision{Now: true, Reason: fmt.Sprintf("fleet lock slot held (group %s, id %s)", f.group, f.id)}, nil
}

// Release gives the slot back. A refusal (4xx) is a permanent *Error: the
// slot may stay taken until an administrator frees it.
func (f *fleetLock) Release(ctx context.Context) error {
	a, err := f.post(ctx, "steady-state", SteadyStatePath)
	if err != nil {
		return err
	}
	if a.code != http.StatusOK {
		return &Error{Op: "steady-state", URL: f.endpoint(SteadyStatePath).Redacted(), StatusCode: a.code, Kind: a.kind, Message: a.text}
	}
	return nil
}

// Describe is "fleet_lock https://lock.example/base group default id 0123...".
func (f *fleetLock) Describe() string {
	return fmt.Sprintf("fleet_lock %s group %s id %s", f.base.Redacted(), f.group, f.id)
}

// retryableTransport sorts transport errors: a certificate or TLS
// protocol problem is configuration and stays; refused, reset, timeouts
// and DNS failures (the network may not be up yet) may go away.
func retryableTransport(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &invalid), errors.As(err, &recErr):
		return false
	}
	return true
}
