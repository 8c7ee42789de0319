package heatmeta

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackresources"
)

// RequestSource ("request", Heat's POLL_TEMP_URL transport) GETs a URL,
// in practice a Swift TempURL Heat writes the metadata to. It sends
// If-None-Match with the ETag of its previous answer (If-Modified-Since
// with its Last-Modified when there was no ETag), so in steady state a poll is one request answered 304
// (ErrNotModified). The URL is a capability: it never appears in errors.
type RequestSource struct {
	URL    string
	Client *http.Client // default http.DefaultClient

	mu            sync.Mutex
	etag, lastMod string
}

var _ Source = (*RequestSource)(nil)

// Forget drops the validators, so the next Fetch is unconditional.
func (s *RequestSource) Forget() {
	s.mu.Lock()
	s.etag, s.lastMod = "", ""
	s.mu.Unlock()
}

// Fetch GETs the URL.
func (s *RequestSource) Fetch(ctx context.Context) (Metadata, error) {
	const op = "request"
	if s.URL == "" {
		return Metadata{}, &Error{Op: op, Err: fmt.Errorf("no metadata_url: %w", ErrNotConfigured)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return Metadata{}, &Error{Op: op, Err: errors.New("metadata_url is not an http or https URL")}
	}
	// If-None-Match when there is an ETag, If-Modified-Since only when
	// there is not: Swift evaluates both independently (not as RFC 9110
	// says), and Last-Modified has one-second granularity, so with both
	// an update made in the same second as the previous one would be
	// answered 304 and missed.
	s.mu.Lock()
	if s.etag != "" {
		req.Header.Set("If-None-Match", s.etag)
	} else if s.lastMod != "" {
		req.Header.Set("If-Modified-Since", s.lastMod)
	}
	s.mu.Unlock()
	req.Header.Set("Accept", "application/json")
	resp, err := client(s.Client).Do(req)
	opu := op + " " + RedactURL(s.URL)
	if err != nil {
		return Metadata{}, httpError(opu, err, s.URL)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return Metadata{}, ErrNotModified
	case resp.StatusCode != http.StatusOK:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return Metadata{}, statusErr(opu, resp.StatusCode)
	}
	b, err := readLimited(resp.Body)
	if err != nil {
		return Metadata{}, httpError(opu, err, s.URL)
	}
	obj, err := parseObject(b)
	if err != nil {
		return Metadata{}, &Error{Op: opu, Err: err}
	}
	s.mu.Lock()
	s.etag, s.lastMod = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	s.mu.Unlock()
	return Metadata{Docs: []Doc{{Key: "request", Raw: obj}}}, nil
}

func client(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return http.DefaultClient
}

// HeatSource ("heat", Heat's POLL_SERVER_HEAT transport) reads the server
// resource's metadata through the Heat API with the stack user's
// credentials: GET /v1/{project}/stacks/{name}/{id}/resources/{res}/metadata.
// The token is kept between polls and renewed when it expires.
type HeatSource struct {
	AuthURL string
	// Keystone v3: UserID (what Heat hands out) or Username with
	// UserDomainID/UserDomainName, Password, ProjectID; or TrustID
	// (with the trustee's user and password); or an application
	// credential.
	UserID, Username             string
	UserDomainID, UserDomainName string
	Password                     string
	ProjectID                    string
	TrustID                      string
	ApplicationCredentialID      string
	ApplicationCredentialSecret  string
	RegionName                   string
	Interface                    string // public (default), internal, admin
	StackID                      string // "stack_name/stack_uuid"
	ResourceName                 string
	Client                       *http.Client

	mu sync.Mutex
	sc *gophercloud.ServiceClient
}

var _ Source = (*HeatSource)(nil)

func (s *HeatSource) creds() keystoneCreds {
	return keystoneCreds{
		AuthURL: s.AuthURL, UserID: s.UserID, Username: s.Username, UserDomainID: s.UserDomainID,
		UserDomain: s.UserDomainName, Password: s.Password, ProjectID: s.ProjectID, TrustID: s.TrustID,
		ApplicationCredentialID: s.ApplicationCredentialID, ApplicationCredentialSecret: s.ApplicationCredentialSecret,
		RegionName: s.RegionName, Interface: s.Interface,
	}
}

// Fetch reads the metadata. Heat has no conditional GET here, so it
// never returns ErrNotModified.
func (s *HeatSource) Fetch(ctx context.Context) (Metadata, error) {
	const op = "heat"
	var missing []string
	for _, f := range []struct{ name, v string }{{"auth_url", s.AuthURL}, {"stack_id", s.StackID}, {"resource_name", s.ResourceName}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if s.ApplicationCredentialID == "" {
		if s.Password == "" {
			missing = append(missing, "password")
		}
		if s.UserID == "" && s.Username == "" {
			missing = append(missing, "user_id")
		}
		if s.ProjectID == "" && s.TrustID == "" {
			missing = append(missing, "project_id")
		}
	}
	if len(missing) > 0 {
		return Metadata{}, &Error{Op: op, Err: fmt.Errorf("missing %s: %w", strings.Join(missing, ", "), ErrNotConfigured)}
	}
	name, id, ok := splitStackID(s.StackID)
	if !ok {
		return Metadata{}, &Error{Op: op, Err: fmt.Errorf("stack_id %q is not stack_name/stack_id", clip(s.StackID))}
	}
	secrets := []string{s.Password, s.ApplicationCredentialSecret}
	s.mu.Lock()
	sc := s.sc
	s.mu.Unlock()
	if sc == nil {
		var err error
		if sc, err = heatClient(ctx, client(s.Client), s.creds()); err != nil {
			return Metadata{}, classifyGopher(op, err, secrets...)
		}
		s.mu.Lock()
		s.sc = sc
		s.mu.Unlock()
	}
	r := stackresources.Metadata(ctx, sc, name, id, s.ResourceName)
	if r.Err != nil {
		return Metadata{}, classifyGopher(op+" stack "+s.StackID+" resource "+s.ResourceName, r.Err, secrets...)
	}
	// Not r.Extract(): it wants map[string]string and fails on the nested
	// deployments list.
	var body struct {
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := r.ExtractInto(&body); err != nil {
		return Metadata{}, &Error{Op: op, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(body.Metadata) == 0 || isNull(body.Metadata) {
		body.Metadata = json.RawMessage("{}")
	}
	obj, err := parseObject(body.Metadata)
	if err != nil {
		return Metadata{}, &Error{Op: op, Err: err}
	}
	return Metadata{Docs: []Doc{{Key: "heat", Raw: obj}}}, nil
}

// DefaultCFNHintPath is where Heat's part handler writes the CFN
// metadata server URL (the cfn-metadata-server part of user data).
const DefaultCFNHintPath = "/var/lib/heat-cfntools/cfn-metadata-server"

// CFNSource ("cfn", Heat's POLL_SERVER_CFN transport) calls the CFN API's
// DescribeStackResource with an EC2 signature version 2 (HmacSHA256 over
// "GET\n<host[:port]>\n<path>\n<sorted, escaped query>") made with the
// stack user's EC2 access/secret key, and reads the JSON text of the
// XML field named by each path ("Resource.Field[.sub.path]", normally
// "<server>.Metadata"); several paths are shallow-merged.
type CFNSource struct {
	MetadataURL     string // e.g. http://heat:8000/v1/; default from HintPath
	HintPath        string // default DefaultCFNHintPath
	AccessKeyID     string
	SecretAccessKey string
	StackName       string
	Paths           []string
	Client          *http.Client
}

var _ Source = (*CFNSource)(nil)

// Fetch calls DescribeStackResource once per path.
func (s *CFNSource) Fetch(ctx context.Context) (Metadata, error) {
	const op = "cfn"
	mu := s.MetadataURL
	if mu == "" {
		hint := s.HintPath
		if hint == "" {
			hint = DefaultCFNHintPath
		}
		b, err := os.ReadFile(hint)
		if err != nil || strings.TrimSpace(string(b)) == "" {
			return Metadata{}, &Error{Op: op, Err: fmt.Errorf("no metadata_url and no hint file %s: %w", hint, ErrNotConfigured)}
		}
		mu = strings.TrimRight(strings.TrimSpace(string(b)), "/") + "/v1/"
	}
	if s.AccessKeyID == "" || s.SecretAccessKey == "" || len(s.Paths) == 0 {
		return Metadata{}, &Error{Op: op, Err: fmt.Errorf("access_key_id, secret_access_key and path are needed: %w", ErrNotConfigured)}
	}
	u, err := url.Parse(mu)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Metadata{}, &Error{Op: op, Err: errors.New("metadata_url is not an http or https URL")}
	}
	merged := map[string]json.RawMessage{}
	for _, path := range s.Paths {
		resource, field, ok := strings.Cut(path, ".")
		if !ok || resource == "" || field == "" {
			return Metadata{}, &Error{Op: op, Err: fmt.Errorf("path %q is not Resource.Field[.sub.path]", clip(path))}
		}
		field, sub, _ := strings.Cut(field, ".")
		params := map[string]string{
			"Action":            "DescribeStackResource",
			"StackName":         s.StackName,
			"LogicalResourceId": resource,
			"AWSAccessKeyId":    s.AccessKeyID,
			"SignatureVersion":  "2",
			"SignatureMethod":   "HmacSHA256",
		}
		params["Signature"] = SignEC2v2(s.SecretAccessKey, http.MethodGet, u.Host, u.EscapedPath(), params)
		q := url.Values{}
		for k, v := range params {
			q.Set(k, v)
		}
		ru := *u
		ru.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ru.String(), nil)
		if err != nil {
			return Metadata{}, &Error{Op: op, Err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		opu := op + " " + RedactURL(mu) + " " + path
		resp, err := client(s.Client).Do(req)
		if err != nil {
			return Metadata{}, httpError(opu, err, s.SecretAccessKey, params["Signature"])
		}
		b, rerr := readLimited(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return Metadata{}, statusErr(opu, resp.StatusCode)
		}
		if rerr != nil {
			return Metadata{}, httpError(opu, rerr)
		}
		obj, err := ParseCFNResponse(b, field, sub)
		if err != nil {
			return Metadata{}, &Error{Op: opu, Err: err}
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(obj, &m); err != nil {
			return Metadata{}, &Error{Op: opu, Err: err}
		}
		for k, v := range m {
			merged[k] = v
		}
	}
	raw, err := marshalJSON(merged)
	if err != nil {
		return Metadata{}, &Error{Op: op, Err: err}
	}
	return Metadata{Docs: []Doc{{Key: "cfn", Raw: raw}}}, nil
}

// SignEC2v2 computes an EC2 signature version 2 (HmacSHA256, base64) of
// a request, as keystoneclient's Ec2Signer does and Heat's CFN API
// checks: the string to sign is verb, host (with port, as in the URL),
// path and the query sorted by key, each key and value percent-escaped
// (only letters, digits and -_.~ kept), joined by newlines. params must
// not hold "Signature".
func SignEC2v2(secret, verb, host, path string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(verb + "\n" + host + "\n" + path + "\n")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(awsEscape(k) + "=" + awsEscape(params[k]))
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// ParseCFNResponse reads a DescribeStackResource XML answer and returns
// the JSON object in StackResourceDetail/<field>, descended into along
// the dot-separated sub path. An empty field (Heat writes no text for
// empty metadata) is {}.
func ParseCFNResponse(b []byte, field, sub string) (json.RawMessage, error) {
	var doc struct {
		XMLName xml.Name `xml:"DescribeStackResourceResponse"`
		Result  struct {
			Detail struct {
				Fields []struct {
					XMLName xml.Name
					Text    string `xml:",chardata"`
				} `xml:",any"`
			} `xml:"StackResourceDetail"`
		} `xml:"DescribeStackResourceResult"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("DescribeStackResource answer: %w", err)
	}
	text, found := "", false
	for _, f := range doc.Result.Detail.Fields {
		if f.XMLName.Local == field {
			text, found = f.Text, true
		}
	}
	if !found {
		return nil, fmt.Errorf("DescribeStackResource answer has no StackResourceDetail/%s", clip(field))
	}
	if strings.TrimSpace(text) == "" {
		text = "{}"
	}
	v, err := decodeAny([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%s is not JSON: %w", clip(field), err)
	}
	if sub != "" {
		for _, k := range strings.Split(sub, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: %q: not an object", clip(field), clip(k))
			}
			if v, ok = m[k]; !ok {
				return nil, fmt.Errorf("%s: no key %q", clip(field), clip(k))
			}
		}
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("%s is not a JSON object", clip(field))
	}
	return marshalJSON(v)
}
