package heatmeta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/gostree/gostree/internal/retry"
)

// Transport is a deployment's deploy_signal_transport.
type Transport string

const (
	CFNSignal     Transport = "CFN_SIGNAL"      // POST to a presigned heat-api-cfn URL
	TempURLSignal Transport = "TEMP_URL_SIGNAL" // PUT to a Swift TempURL
	HeatSignal    Transport = "HEAT_SIGNAL"     // Keystone auth, POST .../resources/{name}/signal
	ZaqarSignal   Transport = "ZAQAR_SIGNAL"    // not supported: Send fails permanently
	NoSignal      Transport = "NO_SIGNAL"       // nothing to send
)

// SignalTarget is where and how to report a deployment's result, read
// from its deploy_* inputs. It holds secrets (the URL's signature, a
// password): String and GoString redact them; persist it only in files
// others cannot read.
type SignalTarget struct {
	Transport Transport `json:"transport"`
	// URL (deploy_signal_id) and Verb (deploy_signal_verb, PUT or POST)
	// for CFN_SIGNAL and TEMP_URL_SIGNAL.
	URL  string `json:"url,omitempty"`
	Verb string `json:"verb,omitempty"`
	// Keystone credentials and the resource for HEAT_SIGNAL.
	AuthURL      string `json:"auth_url,omitempty"`
	Username     string `json:"username,omitempty"`
	UserID       string `json:"user_id,omitempty"`
	Password     string `json:"password,omitempty"`
	ProjectID    string `json:"project_id,omitempty"`
	RegionName   string `json:"region_name,omitempty"`
	StackID      string `json:"stack_id,omitempty"` // "name/uuid"
	ResourceName string `json:"resource_name,omitempty"`
	QueueID      string `json:"queue_id,omitempty"`
}

// String describes the target without secrets.
func (t SignalTarget) String() string {
	switch t.Transport {
	case CFNSignal, TempURLSignal:
		return fmt.Sprintf("%s %s %s", t.Transport, t.Verb, RedactURL(t.URL))
	case HeatSignal:
		return fmt.Sprintf("%s stack %s resource %s via %s", t.Transport, t.StackID, t.ResourceName, RedactURL(t.AuthURL))
	}
	return string(t.Transport)
}

// GoString keeps %#v from printing the secrets.
func (t SignalTarget) GoString() string { return "heatmeta.SignalTarget{" + t.String() + "}" }

// parseSignal reads the deploy_* inputs. A missing transport is inferred
// the way heat-config-notify decides: a signal URL, else a queue, else
// Keystone credentials, else none.
func parseSignal(d *Deployment, where string) (SignalTarget, error) {
	var t SignalTarget
	fields := []struct {
		name string
		dst  *string
	}{
		{"deploy_signal_id", &t.URL}, {"deploy_signal_verb", &t.Verb},
		{"deploy_auth_url", &t.AuthURL}, {"deploy_username", &t.Username}, {"deploy_user_id", &t.UserID},
		{"deploy_password", &t.Password}, {"deploy_project_id", &t.ProjectID}, {"deploy_region_name", &t.RegionName},
		{"deploy_stack_id", &t.StackID}, {"deploy_resource_name", &t.ResourceName}, {"deploy_queue_id", &t.QueueID},
	}
	for _, f := range fields {
		v, _, err := stringInput(d, f.name, where)
		if err != nil {
			return t, err
		}
		*f.dst = v
	}
	tr, _, err := stringInput(d, "deploy_signal_transport", where)
	if err != nil {
		return t, err
	}
	t.Transport = Transport(tr)
	if t.Transport == "" {
		switch {
		case t.URL != "" && strings.EqualFold(t.Verb, "PUT"):
			t.Transport = TempURLSignal
		case t.URL != "":
			t.Transport = CFNSignal
		case t.QueueID != "":
			t.Transport = ZaqarSignal
		case t.AuthURL != "":
			t.Transport = HeatSignal
		default:
			t.Transport = NoSignal
		}
	}
	bad := func(name, format string, a ...any) error {
		return &InputError{Where: where, Input: name, Err: fmt.Errorf(format, a...)}
	}
	switch t.Transport {
	case CFNSignal, TempURLSignal:
		if t.URL == "" {
			return t, bad("deploy_signal_id", "missing (needed for %s)", t.Transport)
		}
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return t, bad("deploy_signal_id", "not an http or https URL")
		}
		if t.Verb == "" {
			t.Verb = http.MethodPost
			if t.Transport == TempURLSignal {
				t.Verb = http.MethodPut
			}
		}
		t.Verb = strings.ToUpper(t.Verb)
		if t.Verb != http.MethodPut && t.Verb != http.MethodPost {
			return t, bad("deploy_signal_verb", "%q is not PUT or POST", clip(t.Verb))
		}
	case HeatSignal:
		for _, req := range []struct{ name, v string }{
			{"deploy_auth_url", t.AuthURL}, {"deploy_password", t.Password}, {"deploy_project_id", t.ProjectID},
			{"deploy_stack_id", t.StackID}, {"deploy_resource_name", t.ResourceName},
		} {
			if req.v == "" {
				return t, bad(req.name, "missing (needed for HEAT_SIGNAL)")
			}
		}
		if t.UserID == "" && t.Username == "" {
			return t, bad("deploy_user_id", "missing (needed for HEAT_SIGNAL)")
		}
		if u, err := url.Parse(t.AuthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return t, bad("deploy_auth_url", "not an http or https URL")
		}
		if _, _, ok := splitStackID(t.StackID); !ok {
			return t, bad("deploy_stack_id", "%q is not stack_name/stack_id", clip(t.StackID))
		}
	case ZaqarSignal, NoSignal:
	default:
		return t, bad("deploy_signal_transport", "%q is not CFN_SIGNAL, TEMP_URL_SIGNAL, HEAT_SIGNAL, ZAQAR_SIGNAL or NO_SIGNAL", clip(tr))
	}
	return t, nil
}

func splitStackID(s string) (name, id string, ok bool) {
	name, id, ok = strings.Cut(s, "/")
	return name, id, ok && name != "" && id != "" && !strings.Contains(id, "/")
}

// Outcome is a deployment's outcome as signalled to Heat.
type Outcome struct {
	// StatusCode is deploy_status_code: 0 for success; anything else
	// makes Heat mark the deployment FAILED.
	StatusCode int
	Stdout     string
	Stderr     string
	// Outputs are added as top-level keys: booted_commit,
	// previous_commit, and on failure an error_output such as "result".
	Outputs map[string]any
}

// MaxSignalBytes is the default bound on a signal body: Heat refuses JSON
// bodies over max_json_body_size (1 MiB); heat-config-notify keeps below
// 950000 bytes, and so do we.
const MaxSignalBytes = 950000

// trimMarker starts an output whose beginning was cut off.
const trimMarker = "[...trimmed...]\n"

// EncodeOutcome builds the signal body: a JSON object with
// deploy_status_code, deploy_stdout, deploy_stderr and the outputs. When
// it would exceed max bytes, the start of stdout and stderr is cut (their
// tail, where the error usually is, is kept), as heat-config-notify does.
func EncodeOutcome(r Outcome, max int) ([]byte, error) {
	if max <= 0 {
		max = MaxSignalBytes
	}
	body := map[string]any{}
	for k, v := range r.Outputs {
		switch k {
		case "deploy_status_code", "deploy_stdout", "deploy_stderr":
			return nil, fmt.Errorf("output name %q is reserved", k)
		}
		body[k] = v
	}
	body["deploy_status_code"] = r.StatusCode
	out, errs := r.Stdout, r.Stderr
	for range 20 {
		body["deploy_stdout"], body["deploy_stderr"] = out, errs
		b, err := marshalJSON(body)
		if err != nil {
			return nil, fmt.Errorf("encoding signal: %w", err)
		}
		if len(b) <= max {
			return b, nil
		}
		excess := len(b) - max + len(trimMarker)*2 + 64
		lo, le := len(out), len(errs)
		if lo+le == 0 {
			return nil, fmt.Errorf("signal body is %d bytes with empty stdout/stderr: outputs too large (limit %d)", len(b), max)
		}
		// Cut in proportion to the sizes, at least what is over.
		cutOut := excess * lo / (lo + le)
		cutErr := excess - cutOut
		out = keepTail(out, lo-cutOut)
		errs = keepTail(errs, le-cutErr)
	}
	body["deploy_stdout"], body["deploy_stderr"] = "", ""
	b, err := marshalJSON(body)
	if err != nil {
		return nil, fmt.Errorf("encoding signal: %w", err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("signal body is %d bytes with empty stdout/stderr: outputs too large (limit %d)", len(b), max)
	}
	return b, nil
}

// keepTail returns the last n bytes of s (on a rune boundary) behind the
// trim marker, or s when it is not longer than n.
func keepTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = strings.TrimPrefix(s, trimMarker)
	if n <= len(trimMarker) {
		return ""
	}
	start := len(s) - (n - len(trimMarker))
	if start < 0 {
		start = 0
	}
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return trimMarker + s[start:]
}

// Signaller sends results. The zero value works (http.DefaultClient, 8
// attempts, 1 s base backoff).
type Signaller struct {
	// HTTPClient sends the requests (TLS, proxy, timeout).
	HTTPClient *http.Client
	// Attempts bounds the tries for retryable failures (default 8).
	Attempts int
	// Backoff is the first wait; it doubles up to MaxBackoff (default 1 s
	// and 60 s), with jitter: each wait is drawn from [d/2, d).
	Backoff, MaxBackoff time.Duration
	// MaxBytes bounds the body (default MaxSignalBytes).
	MaxBytes int
	// Sleep waits between attempts; nil sleeps on a timer, honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Send reports r to t, retrying retryable failures with jittered
// exponential backoff. NO_SIGNAL sends nothing. Errors name the transport
// and never the URL's query, a password or a token.
func (s *Signaller) Send(ctx context.Context, t SignalTarget, r Outcome) error {
	if t.Transport == NoSignal {
		return nil
	}
	if t.Transport == ZaqarSignal {
		return &Error{Op: "signal ZAQAR_SIGNAL", Err: errors.New("the Zaqar signal transport is not supported; use TEMP_URL_SIGNAL, HEAT_SIGNAL or CFN_SIGNAL")}
	}
	body, err := EncodeOutcome(r, s.MaxBytes)
	if err != nil {
		return err
	}
	attempts := s.Attempts
	if attempts <= 0 {
		attempts = 8
	}
	var last error
	for i := range attempts {
		if i > 0 {
			if err := s.sleep(ctx, s.wait(i-1)); err != nil {
				return fmt.Errorf("%w (last error: %v)", err, last)
			}
		}
		last = s.once(ctx, t, body)
		if last == nil || !IsRetryable(last) || ctx.Err() != nil {
			return last
		}
	}
	return fmt.Errorf("giving up after %d attempts: %w", attempts, last)
}

func (s *Signaller) wait(n int) time.Duration {
	base, max := s.Backoff, s.MaxBackoff
	if base <= 0 {
		base = time.Second
	}
	if max <= 0 {
		max = time.Minute
	}
	d := base << min(n, 20)
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (s *Signaller) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	return retry.Sleep(ctx, d)
}

func (s *Signaller) client() *http.Client {
	if s.HTTPClient != nil {
		return s.HTTPClient
	}
	return http.DefaultClient
}

func (s *Signaller) once(ctx context.Context, t SignalTarget, body []byte) error {
	switch t.Transport {
	case CFNSignal, TempURLSignal:
		return s.sendURL(ctx, t, body)
	case HeatSignal:
		return s.sendHeat(ctx, t, body)
	}
	return &Error{Op: "signal", Err: fmt.Errorf("unknown transport %q", clip(string(t.Transport)))}
}

func (s *Signaller) sendURL(ctx context.Context, t SignalTarget, body []byte) error {
	op := "signal " + string(t.Transport) + " " + t.Verb + " " + RedactURL(t.URL)
	req, err := http.NewRequestWithContext(ctx, t.Verb, t.URL, bytes.NewReader(body))
	if err != nil {
		return &Error{Op: op, Err: errors.New("bad signal URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client().Do(req)
	if err != nil {
		return httpError(op, err, t.URL)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusErr(op, resp.StatusCode)
	}
	return nil
}

func (s *Signaller) sendHeat(ctx context.Context, t SignalTarget, body []byte) error {
	op := "signal HEAT_SIGNAL stack " + t.StackID + " resource " + t.ResourceName
	sc, err := heatClient(ctx, s.client(), keystoneCreds{
		AuthURL: t.AuthURL, UserID: t.UserID, Username: t.Username, Password: t.Password,
		ProjectID: t.ProjectID, RegionName: t.RegionName,
	})
	if err != nil {
		return classifyGopher(op, err, t.Password)
	}
	name, id, _ := splitStackID(t.StackID)
	u := sc.ServiceURL("stacks", url.PathEscape(name), url.PathEscape(id), "resources", url.PathEscape(t.ResourceName), "signal")
	_, err = sc.Post(ctx, u, json.RawMessage(body), nil, &gophercloud.RequestOpts{OkCodes: []int{200, 201, 202, 204}})
	if err != nil {
		return classifyGopher(op, err, t.Password)
	}
	return nil
}

// keystoneCreds are Keystone v3 credentials of a stack user (user id +
// password + project, as Heat hands out) or an application credential or
// a trust.
type keystoneCreds struct {
	AuthURL                     string
	UserID, Username            string
	UserDomainID, UserDomain    string
	Password                    string
	ProjectID                   string
	TrustID                     string
	ApplicationCredentialID     string
	ApplicationCredentialSecret string
	RegionName                  string
	Interface                   string
}

func (k keystoneCreds) authOptions() gophercloud.AuthOptions {
	// Heat hands out both deploy_user_id and deploy_username; Keystone
	// wants one, and the id needs no domain.
	username := k.Username
	if k.UserID != "" {
		username = ""
	}
	ao := gophercloud.AuthOptions{
		IdentityEndpoint: k.AuthURL,
		UserID:           k.UserID,
		Username:         username,
		DomainID:         k.UserDomainID,
		DomainName:       k.UserDomain,
		Password:         k.Password,
		AllowReauth:      true,
	}
	switch {
	case k.ApplicationCredentialID != "":
		ao = gophercloud.AuthOptions{
			IdentityEndpoint:            k.AuthURL,
			ApplicationCredentialID:     k.ApplicationCredentialID,
			ApplicationCredentialSecret: k.ApplicationCredentialSecret,
			AllowReauth:                 true,
		}
	case k.TrustID != "":
		ao.Scope = &gophercloud.AuthScope{TrustID: k.TrustID}
	default:
		ao.TenantID = k.ProjectID
	}
	return ao
}

// heatClient authenticates and returns the orchestration client.
func heatClient(ctx context.Context, hc *http.Client, k keystoneCreds) (*gophercloud.ServiceClient, error) {
	pc, err := openstack.NewClient(k.AuthURL)
	if err != nil {
		return nil, fmt.Errorf("auth URL: %w", err)
	}
	pc.HTTPClient = *hc
	pc.UserAgent.Prepend("gostree-agent")
	if err := openstack.Authenticate(ctx, pc, k.authOptions()); err != nil {
		return nil, fmt.Errorf("keystone authentication: %w", err)
	}
	eo := gophercloud.EndpointOpts{Region: k.RegionName}
	switch k.Interface {
	case "internal", "internalURL":
		eo.Availability = gophercloud.AvailabilityInternal
	case "admin", "adminURL":
		eo.Availability = gophercloud.AvailabilityAdmin
	}
	sc, err := openstack.NewOrchestrationV1(pc, eo)
	if err != nil {
		return nil, fmt.Errorf("orchestration endpoint: %w", err)
	}
	return sc, nil
}

// classifyGopher turns a gophercloud error into an *Error: HTTP status
// codes sort by retryableStatus, transport errors by retryableNetError.
// gophercloud's messages carry the request URL and the response body
// (never the password, but redact it anyway).
func classifyGopher(op string, err error, secrets ...string) error {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return &Error{Op: op, Status: code.Actual, Retryable: retryableStatus(code.Actual), Err: sanitize(fmt.Errorf("%s %s", code.Method, RedactURL(code.URL)), secrets...)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return httpError(op, err, secrets...)
	}
	var eoe *gophercloud.ErrEndpointNotFound
	if errors.As(err, &eoe) {
		return &Error{Op: op, Err: errors.New("no orchestration endpoint in the service catalog")}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Op: op, Err: sanitize(err, secrets...)}
	}
	return &Error{Op: op, Err: sanitize(err, secrets...)}
}
