package heatmeta

import (
	"crypto/md5"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeCloud is an in-process Keystone v3 + Heat API speaking the real
// wire formats (token with catalog, resource metadata, resource signal).
type fakeCloud struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	userID    string
	password  string
	projectID string
	stack     string // name/uuid
	resource  string
	metadata  json.RawMessage // served as {"metadata": ...}
	signals   []json.RawMessage
	auths     int
	metaGets  int
	failNext  []int // status codes to answer the next Heat requests with
	tokens    map[string]bool
}

func newFakeCloud(t *testing.T) *fakeCloud {
	f := &fakeCloud{t: t, userID: "8a1b2c3d4e5f", password: "stack-user-pw-Xy9", projectID: "proj6a1b",
		stack: "mystack/9b2d7d1e-6a4c-4b8e-8f0e-3c1d2b7a9e55", resource: "server", metadata: json.RawMessage(`{}`),
		tokens: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCloud) authURL() string { return f.srv.URL + "/identity/v3" }

func (f *fakeCloud) setMetadata(raw string) {
	f.mu.Lock()
	f.metadata = json.RawMessage(raw)
	f.mu.Unlock()
}

func (f *fakeCloud) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/identity/v3/auth/tokens":
		f.auths++
		var req struct {
			Auth struct {
				Identity struct {
					Methods  []string `json:"methods"`
					Password struct {
						User struct {
							ID       string `json:"id"`
							Password string `json:"password"`
						} `json:"user"`
					} `json:"password"`
					AppCred struct {
						ID     string `json:"id"`
						Secret string `json:"secret"`
					} `json:"application_credential"`
				} `json:"identity"`
				Scope struct {
					Project struct {
						ID string `json:"id"`
					} `json:"project"`
					Trust struct {
						ID string `json:"id"`
					} `json:"OS-TRUST:trust"`
				} `json:"scope"`
			} `json:"auth"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad json", 400)
			return
		}
		pw := req.Auth.Identity.Password.User
		ac := req.Auth.Identity.AppCred
		okPassword := pw.ID == f.userID && pw.Password == f.password &&
			(req.Auth.Scope.Project.ID == f.projectID || req.Auth.Scope.Trust.ID == "trust-1")
		okAppCred := ac.ID == "appcred-1" && ac.Secret == "appcred-secret" && req.Auth.Scope.Project.ID == ""
		if !okPassword && !okAppCred {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`)
			return
		}
		tok := fmt.Sprintf("gAAAAAtoken%d", f.auths)
		f.tokens[tok] = true
		w.Header().Set("X-Subject-Token", tok)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"token": {"methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z", "issued_at": "2026-11-26T00:00:00.000000Z",
 "user": {"id": %q, "name": "stack-user", "domain": {"id": "heat", "name": "heat"}, "password_expires_at": null},
 "project": {"id": %q, "name": "stackproj", "domain": {"id": "heat", "name": "heat"}},
 "roles": [{"id": "r1", "name": "heat_stack_user"}],
 "catalog": [
  {"type": "identity", "name": "keystone", "id": "k1", "endpoints": [{"id": "e0", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": %q}]},
  {"type": "orchestration", "name": "heat", "id": "h1", "endpoints": [
    {"id": "e1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": %q},
    {"id": "e2", "interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": %q}]}]}}`,
			f.userID, f.projectID, f.srv.URL+"/identity/v3", f.srv.URL+"/heat/v1/"+f.projectID, f.srv.URL+"/heat-internal/v1/"+f.projectID)
	case strings.HasPrefix(r.URL.Path, "/heat/v1/"):
		if !f.tokens[r.Header.Get("X-Auth-Token")] {
			w.WriteHeader(401)
			io.WriteString(w, `{"error": {"code": 401, "message": "auth required"}}`)
			return
		}
		if len(f.failNext) > 0 {
			code := f.failNext[0]
			f.failNext = f.failNext[1:]
			w.WriteHeader(code)
			io.WriteString(w, `{"explanation": "failure injected by test"}`)
			return
		}
		base := "/heat/v1/" + f.projectID + "/stacks/" + f.stack + "/resources/" + f.resource
		switch {
		case r.Method == http.MethodGet && r.URL.Path == base+"/metadata":
			f.metaGets++
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"metadata": %s}`, f.metadata)
		case r.Method == http.MethodPost && r.URL.Path == base+"/signal":
			b, _ := io.ReadAll(r.Body)
			if !json.Valid(b) {
				http.Error(w, "bad json", 400)
				return
			}
			f.signals = append(f.signals, b)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "null")
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"explanation": "The resource could not be found.", "code": 404, "error": {"type": "EntityNotFound"}, "title": "Not Found"}`)
		}
	default:
		http.NotFound(w, r)
	}
}

// fakeSwift serves one object through a TempURL-like URL: GET with ETag
// and Last-Modified and conditional requests answered 304; PUT stores.
type fakeSwift struct {
	srv *httptest.Server

	mu       sync.Mutex
	objects  map[string][]byte
	gets     int
	notMod   int
	puts     int
	failNext []int
	lastHdr  http.Header
}

func newFakeSwift(t *testing.T) *fakeSwift {
	f := &fakeSwift{objects: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

const fakeSig = "temp_url_sig=0123456789abcdef0123456789abcdef01234567&temp_url_expires=2147483586"

func (f *fakeSwift) url(obj string) string {
	return f.srv.URL + "/v1/AUTH_6a1b/cont/" + obj + "?" + fakeSig
}

func (f *fakeSwift) put(obj string, b []byte) {
	f.mu.Lock()
	f.objects[obj] = b
	f.mu.Unlock()
}

func (f *fakeSwift) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastHdr = r.Header.Clone()
	if r.URL.RawQuery != fakeSig {
		w.WriteHeader(401)
		io.WriteString(w, "<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized to access the document you requested.</p></html>")
		return
	}
	obj := strings.TrimPrefix(r.URL.Path, "/v1/AUTH_6a1b/cont/")
	if len(f.failNext) > 0 {
		code := f.failNext[0]
		f.failNext = f.failNext[1:]
		w.WriteHeader(code)
		return
	}
	switch r.Method {
	case http.MethodGet:
		f.gets++
		b, ok := f.objects[obj]
		if !ok {
			w.WriteHeader(404)
			return
		}
		etag := fmt.Sprintf("%x", md5sum(b))
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", "Wed, 25 Nov 2026 08:00:00 GMT")
		if r.Header.Get("If-None-Match") == etag {
			f.notMod++
			w.WriteHeader(304)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	case http.MethodPut:
		f.puts++
		b, _ := io.ReadAll(r.Body)
		f.objects[obj] = b
		w.WriteHeader(201)
	default:
		w.WriteHeader(405)
	}
}

func md5sum(b []byte) [16]byte { return md5.Sum(b) }
