package heatmeta

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var ctx = context.Background()

func writeFile(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func oneDoc(t *testing.T, md Metadata, key string) map[string]any {
	t.Helper()
	if len(md.Docs) != 1 || md.Docs[0].Key != key {
		t.Fatalf("docs: %+v", md.Docs)
	}
	var m map[string]any
	if err := json.Unmarshal(md.Docs[0].Raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHeatLocalSource(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "cfn-init-data"), filepath.Join(dir, "other")
	s := &HeatLocalSource{Paths: []string{a, b}}
	if _, err := s.Fetch(ctx); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("no files: %v", err)
	}
	writeFile(t, a, `{"x": 1, "os-collect-config": {"collectors": ["heat"]}}`, 0o600)
	writeFile(t, b, `{"x": 2}`, 0o600)
	m := oneDoc(t, mustFetch(t, s), "heat_local")
	if m["x"] != float64(2) || m["os-collect-config"] == nil {
		t.Errorf("merged: %v", m)
	}
	writeFile(t, b, `[1]`, 0o600)
	if _, err := s.Fetch(ctx); err == nil || !strings.Contains(err.Error(), b) || IsRetryable(err) {
		t.Errorf("bad file: %v", err)
	}
}

func mustFetch(t *testing.T, s Source) Metadata {
	t.Helper()
	md, err := s.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func TestLocalSource(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "local-data")
	s := &LocalSource{Dirs: []string{dir}}
	if _, err := s.Fetch(ctx); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("no dir: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "subdir"), 0o755)
	os.Chmod(dir, 0o755)
	writeFile(t, filepath.Join(dir, "b.json"), `{"b": 1}`, 0o644)
	writeFile(t, filepath.Join(dir, "A"), `{"a": 1}`, 0o600)
	writeFile(t, filepath.Join(dir, ".hidden"), `not json`, 0o600)
	md := mustFetch(t, s)
	if len(md.Docs) != 2 || md.Docs[0].Key != "local/A" || md.Docs[1].Key != "local/b.json" {
		t.Fatalf("docs: %+v", md.Docs)
	}
	writeFile(t, filepath.Join(dir, "c"), `{"c": 1}`, 0o646)
	if _, err := s.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("world-writable file: %v", err)
	}
	os.Remove(filepath.Join(dir, "c"))
	os.Chmod(dir, 0o777)
	if _, err := s.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("world-writable dir: %v", err)
	}
	os.Chmod(dir, 0o755)
	writeFile(t, filepath.Join(dir, "d"), `{"d": `, 0o600)
	if _, err := s.Fetch(ctx); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "d")) {
		t.Errorf("bad JSON: %v", err)
	}
}

func configDrive(t *testing.T, userData string) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "openstack", "latest", "meta_data.json"), string(readSample(t, "meta_data.json")), 0o400)
	if userData != "" {
		writeFile(t, filepath.Join(dir, "openstack", "latest", "user_data"), userData, 0o400)
	}
	return dir
}

func TestConfigDriveSource(t *testing.T) {
	dir := configDrive(t, string(readSample(t, "user_data.mime")))
	m := oneDoc(t, mustFetch(t, &ConfigDriveSource{Dir: dir}), "config_drive")
	occ, _ := m["os-collect-config"].(map[string]any)
	if occ == nil || m["deployments"] == nil {
		t.Fatalf("cfn-init-data not read: %v", m)
	}
	inst, _ := m["instance"].(map[string]any)
	if inst["uuid"] != "1f0d7c43-2e4f-4b4f-a6c3-4f7d1d9e2a11" || inst["hostname"] != "compute-0.novalocal" {
		t.Errorf("instance: %v", inst)
	}
	raw, _ := json.Marshal(m)
	w, err := ParseWanted(raw)
	if err != nil || w.KeyErr != nil || w.Key == nil || w.Key.Ref != "exampleos/x86_64/stable" {
		t.Fatalf("gostree key from Nova metadata: %v %v %+v", err, w.KeyErr, w.Key)
	}

	// Plain (non-MIME) user data and none at all are fine.
	for _, ud := range []string{"#!/bin/sh\necho hi\n", ""} {
		m := oneDoc(t, mustFetch(t, &ConfigDriveSource{Dir: configDrive(t, ud)}), "config_drive")
		if m["deployments"] != nil || m["gostree"] == nil {
			t.Errorf("user data %q: %v", ud, m)
		}
	}
	if _, err := (&ConfigDriveSource{Dir: t.TempDir()}).Fetch(ctx); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("empty dir: %v", err)
	}
}

func TestCFNInitDataBase64(t *testing.T) {
	// Python's email package base64-encodes a utf-8 part.
	js := `{"deployments": [], "name": "sérvér"}`
	b64 := base64.StdEncoding.EncodeToString([]byte(js))
	ud := "Content-Type: multipart/mixed; boundary=\"BOUND\"\r\nMIME-Version: 1.0\r\n\r\n" +
		"--BOUND\r\nContent-Type: text/x-cfninitdata; charset=\"utf-8\"\r\nMIME-Version: 1.0\r\n" +
		"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"cfn-init-data\"\r\n\r\n" +
		b64[:20] + "\r\n" + b64[20:] + "\r\n--BOUND--\r\n"
	got, err := CFNInitData([]byte(ud))
	if err != nil || !jsonEqual(got, []byte(js)) {
		t.Fatalf("%s %v", got, err)
	}
	bad := strings.Replace(string(readSample(t, "user_data.mime")), `{"os-collect-config"`, `{"os-collect-config" oops`, 1)
	if _, err := CFNInitData([]byte(bad)); err == nil || !strings.Contains(err.Error(), "cfn-init-data") {
		t.Errorf("bad part: %v", err)
	}
}

func TestRequestSourceConditional(t *testing.T) {
	sw := newFakeSwift(t)
	sw.put("meta", []byte(`{"deployments": []}`))
	s := &RequestSource{URL: sw.url("meta")}
	oneDoc(t, mustFetch(t, s), "request")
	if _, err := s.Fetch(ctx); !errors.Is(err, ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
	// The ETag only: Swift would also apply If-Modified-Since, whose
	// one-second granularity hides an update made within the same second.
	if sw.lastHdr.Get("If-None-Match") == "" || sw.lastHdr.Get("If-Modified-Since") != "" {
		t.Errorf("conditional headers: %v", sw.lastHdr)
	}
	sw.put("meta", []byte(`{"deployments": [], "v": 2}`))
	if m := oneDoc(t, mustFetch(t, s), "request"); m["v"] != float64(2) {
		t.Errorf("changed doc: %v", m)
	}
	if sw.gets != 3 || sw.notMod != 1 {
		t.Errorf("gets %d, 304s %d: want one request per poll", sw.gets, sw.notMod)
	}
	s.Forget()
	mustFetch(t, s)

	for _, c := range []struct {
		code  int
		retry bool
	}{{503, true}, {404, false}, {401, false}, {429, true}} {
		sw.failNext = []int{c.code}
		_, err := s.Fetch(ctx)
		if err == nil || IsRetryable(err) != c.retry || strings.Contains(err.Error(), "temp_url_sig") || !strings.Contains(err.Error(), fmt.Sprint(c.code)) {
			t.Errorf("HTTP %d: %v (retryable %v)", c.code, err, IsRetryable(err))
		}
	}
	sw.put("meta", []byte(`["not", "an", "object"]`))
	if _, err := s.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "not an object") {
		t.Errorf("list body: %v", err)
	}
	// Connection refused: retryable, URL redacted.
	sw.srv.Close()
	_, err := s.Fetch(ctx)
	if err == nil || !IsRetryable(err) || strings.Contains(err.Error(), "temp_url_sig") || strings.Contains(err.Error(), "0123456789abcdef") {
		t.Errorf("refused: %v", err)
	}
}

func TestHeatSource(t *testing.T) {
	fc := newFakeCloud(t)
	fc.setMetadata(string(readSample(t, "server-metadata.json")))
	s := &HeatSource{AuthURL: fc.authURL(), UserID: fc.userID, Password: fc.password, ProjectID: fc.projectID,
		StackID: fc.stack, ResourceName: fc.resource}
	m := oneDoc(t, mustFetch(t, s), "heat")
	deps, _ := m["deployments"].([]any)
	if len(deps) != 2 {
		t.Fatalf("nested metadata lost: %v", m)
	}
	mustFetch(t, s)
	if fc.auths != 1 || fc.metaGets != 2 {
		t.Errorf("auths %d gets %d: the token must be reused", fc.auths, fc.metaGets)
	}
	fc.failNext = []int{503}
	if _, err := s.Fetch(ctx); !IsRetryable(err) || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	fc.failNext = []int{404}
	if _, err := s.Fetch(ctx); err == nil || IsRetryable(err) {
		t.Errorf("404: %v", err)
	}
	// Internal interface picks the other catalog entry (which this fake
	// does not serve: 404).
	si := &HeatSource{AuthURL: fc.authURL(), UserID: fc.userID, Password: fc.password, ProjectID: fc.projectID,
		StackID: fc.stack, ResourceName: fc.resource, Interface: "internal"}
	if _, err := si.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("internal endpoint: %v", err)
	}

	bad := &HeatSource{AuthURL: fc.authURL(), UserID: fc.userID, Password: "wrong-password-123", ProjectID: fc.projectID,
		StackID: fc.stack, ResourceName: fc.resource}
	_, err := bad.Fetch(ctx)
	if err == nil || IsRetryable(err) || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-password-123") {
		t.Errorf("bad password: %v", err)
	}
	if _, err := (&HeatSource{AuthURL: fc.authURL()}).Fetch(ctx); !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), "stack_id") {
		t.Errorf("unconfigured: %v", err)
	}
	noslash := &HeatSource{AuthURL: fc.authURL(), UserID: fc.userID, Password: fc.password, ProjectID: fc.projectID,
		StackID: "justaname", ResourceName: fc.resource}
	if _, err := noslash.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "stack_name/stack_id") {
		t.Errorf("bad stack id: %v", err)
	}
}

func TestSignEC2v2Vectors(t *testing.T) {
	// Made with an independent Python implementation of keystoneclient's
	// Ec2Signer (signature version 2, HmacSHA256).
	p := map[string]string{"Action": "DescribeStackResource", "StackName": "teststack", "LogicalResourceId": "server",
		"AWSAccessKeyId": "4567", "SignatureVersion": "2", "SignatureMethod": "HmacSHA256"}
	if got := SignEC2v2("sekrit/+=", "GET", "127.0.0.1:8000", "/v1/", p); got != "OmESvQ2M7QQ3Va15v/riDpQFOtDShHCW9O8QXxQHICA=" {
		t.Errorf("vector 1: %s", got)
	}
	p["StackName"] = "my stack/ü"
	if got := SignEC2v2("sekrit/+=", "GET", "heat.example.com:8000", "/v1/", p); got != "4TKUjink2SAOLoAynTaP+2+l2fIqE9nhhVRFD11CyIw=" {
		t.Errorf("vector 2: %s", got)
	}
}

// cfnServer checks the signature as Heat's ec2token middleware does
// (recomputed over the received query without Signature) and answers
// DescribeStackResource in Heat's XML.
func cfnServer(t *testing.T, secret string, meta map[string]string) (*httptest.Server, *int) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		q := r.URL.Query()
		params := map[string]string{}
		for k := range q {
			if k != "Signature" {
				params[k] = q.Get(k)
			}
		}
		want := SignEC2v2(secret, r.Method, r.Host, r.URL.EscapedPath(), params)
		if q.Get("Signature") != want || q.Get("Action") != "DescribeStackResource" || q.Get("SignatureVersion") != "2" ||
			q.Get("SignatureMethod") != "HmacSHA256" || q.Get("AWSAccessKeyId") != "AK1" {
			w.WriteHeader(403)
			io.WriteString(w, `<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>`)
			return
		}
		res := q.Get("LogicalResourceId")
		js, ok := meta[res]
		if !ok {
			w.WriteHeader(400)
			return
		}
		var esc strings.Builder
		xmlEscape(&esc, js)
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, "<DescribeStackResourceResponse><DescribeStackResourceResult><StackResourceDetail>"+
			"<StackId>arn:openstack:heat::p:stacks/%s/id</StackId><ResourceStatus>CREATE_COMPLETE</ResourceStatus>"+
			"<Description></Description><ResourceType>OS::Nova::Server</ResourceType>"+
			"<LastUpdatedTimestamp>2026-11-25T08:00:00Z</LastUpdatedTimestamp><StackName>%s</StackName>"+
			"<LogicalResourceId>%s</LogicalResourceId><Metadata>%s</Metadata><PhysicalResourceId>uuid</PhysicalResourceId>"+
			"</StackResourceDetail></DescribeStackResourceResult></DescribeStackResourceResponse>",
			q.Get("StackName"), q.Get("StackName"), res, esc.String())
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func xmlEscape(b *strings.Builder, s string) {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	b.WriteString(r.Replace(s))
}

func TestCFNSource(t *testing.T) {
	srv, calls := cfnServer(t, "SECRET/key+1", map[string]string{
		"server": string(readSample(t, "server-metadata.json")),
		"extra":  `{"sub": {"tree": {"z": "<&>"}}}`,
	})
	s := &CFNSource{MetadataURL: srv.URL + "/v1/", AccessKeyID: "AK1", SecretAccessKey: "SECRET/key+1", StackName: "my stack",
		Paths: []string{"server.Metadata", "extra.Metadata.sub.tree"}}
	m := oneDoc(t, mustFetch(t, s), "cfn")
	if m["deployments"] == nil || m["z"] != "<&>" || *calls != 2 {
		t.Fatalf("got %v after %d calls", m, *calls)
	}
	wrong := *s
	wrong.SecretAccessKey = "other-secret"
	_, err := wrong.Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "other-secret") || IsRetryable(err) {
		t.Errorf("bad key: %v", err)
	}
	// Hint file instead of a URL.
	hint := filepath.Join(t.TempDir(), "cfn-metadata-server")
	writeFile(t, hint, srv.URL+"\n", 0o600)
	h := *s
	h.MetadataURL, h.HintPath = "", hint
	mustFetch(t, &h)
	for _, p := range []string{"noDot", "server.Missing", "extra.Metadata.sub.nope"} {
		b := *s
		b.Paths = []string{p}
		if _, err := b.Fetch(ctx); err == nil {
			t.Errorf("path %s: no error", p)
		}
	}
	if _, err := (&CFNSource{HintPath: filepath.Join(t.TempDir(), "none")}).Fetch(ctx); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("unconfigured: %v", err)
	}
}

func TestParseCFNResponseEmptyMetadata(t *testing.T) {
	got, err := ParseCFNResponse([]byte(`<DescribeStackResourceResponse><DescribeStackResourceResult><StackResourceDetail><Metadata /></StackResourceDetail></DescribeStackResourceResult></DescribeStackResourceResponse>`), "Metadata", "")
	if err != nil || string(got) != "{}" {
		t.Fatalf("%s %v", got, err)
	}
	if _, err := ParseCFNResponse([]byte(`<ErrorResponse/>`), "Metadata", ""); err == nil {
		t.Error("error response accepted")
	}
}

func ec2Server(t *testing.T) (*httptest.Server, *int) {
	tree := map[string]string{
		"/latest/meta-data/":                            "ami-id\nhostname\npublic-keys/\nplacement/\n",
		"/latest/meta-data/ami-id":                      "ami-00000001",
		"/latest/meta-data/hostname":                    "compute-0.novalocal",
		"/latest/meta-data/public-keys/":                "0=default",
		"/latest/meta-data/public-keys/0/":              "openssh-key",
		"/latest/meta-data/public-keys/0/openssh-key":   "ssh-ed25519 AAAA user@host",
		"/latest/meta-data/placement/":                  "availability-zone",
		"/latest/meta-data/placement/availability-zone": "nova",
	}
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		v, ok := tree[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, v)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestEC2Source(t *testing.T) {
	srv, n := ec2Server(t)
	s := &EC2Source{URL: srv.URL + "/latest/meta-data"}
	m := oneDoc(t, mustFetch(t, s), "ec2")
	pk, _ := m["public-keys"].(map[string]any)
	zero, _ := pk["0"].(map[string]any)
	if m["hostname"] != "compute-0.novalocal" || zero["openssh-key"] != "ssh-ed25519 AAAA user@host" {
		t.Fatalf("tree: %v", m)
	}
	// Config drive first: no network.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ec2", "latest", "meta-data.json"), `{"hostname": "from-drive"}`, 0o400)
	before := *n
	m = oneDoc(t, mustFetch(t, &EC2Source{URL: srv.URL + "/latest/meta-data", ConfigDriveDir: dir}), "ec2")
	if m["hostname"] != "from-drive" || *n != before {
		t.Errorf("config drive: %v, %d requests", m, *n-before)
	}
	if _, err := (&EC2Source{URL: srv.URL + "/nothing"}).Fetch(ctx); err == nil || IsRetryable(err) {
		t.Errorf("404: %v", err)
	}
}

func TestEC2SourceLoopBounded(t *testing.T) {
	// A server whose every directory lists itself again.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "again/\n")
	}))
	defer srv.Close()
	_, err := (&EC2Source{URL: srv.URL}).Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("%v", err)
	}
	u, _ := url.Parse(srv.URL)
	if u.Hostname() != "127.0.0.1" {
		t.Fatalf("test server not on loopback: %s", u)
	}
}

func TestRequestSourceLastModifiedOnly(t *testing.T) {
	var ims []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ims = append(ims, r.Header.Get("If-Modified-Since"))
		if r.Header.Get("If-None-Match") != "" {
			t.Errorf("If-None-Match without an ETag")
		}
		w.Header().Set("Last-Modified", "Wed, 25 Nov 2026 08:00:00 GMT")
		if r.Header.Get("If-Modified-Since") == "Wed, 25 Nov 2026 08:00:00 GMT" {
			w.WriteHeader(304)
			return
		}
		io.WriteString(w, `{"a": 1}`)
	}))
	defer srv.Close()
	s := &RequestSource{URL: srv.URL + "/meta"}
	mustFetch(t, s)
	if _, err := s.Fetch(ctx); !errors.Is(err, ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
	if len(ims) != 2 || ims[0] != "" || ims[1] == "" {
		t.Fatalf("If-Modified-Since sent: %q", ims)
	}
}

func TestHeatSourceOtherCredentials(t *testing.T) {
	fc := newFakeCloud(t)
	fc.setMetadata(`{"deployments": []}`)
	for name, s := range map[string]*HeatSource{
		"application credential": {AuthURL: fc.authURL(), ApplicationCredentialID: "appcred-1", ApplicationCredentialSecret: "appcred-secret",
			StackID: fc.stack, ResourceName: fc.resource},
		"trust": {AuthURL: fc.authURL(), UserID: fc.userID, Password: fc.password, TrustID: "trust-1",
			StackID: fc.stack, ResourceName: fc.resource},
	} {
		if _, err := s.Fetch(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := &HeatSource{AuthURL: fc.authURL(), ApplicationCredentialID: "appcred-1", ApplicationCredentialSecret: "wrong-secret-77",
		StackID: fc.stack, ResourceName: fc.resource}
	if _, err := bad.Fetch(ctx); err == nil || strings.Contains(err.Error(), "wrong-secret-77") || IsRetryable(err) {
		t.Errorf("bad application credential: %v", err)
	}
}
