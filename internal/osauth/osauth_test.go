package osauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"

	"github.com/gostree/gostree/internal/osauth"
	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/internal/retry"
)

// canList proves the client works: it lists the account's containers.
func canList(t *testing.T, c *osauth.Client) {
	t.Helper()
	sc, err := openstack.NewObjectStorageV1(c.Provider, c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := containers.List(sc, nil).AllPages(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestOpenrc(t *testing.T) {
	osauthtest.Setup(t)
	canList(t, osauthtest.Client(t))
}

func TestWrongPassword(t *testing.T) {
	vars := osauthtest.Setup(t)
	t.Setenv("OS_PASSWORD", "wrong-"+vars["OS_PASSWORD"])
	_, err := osauth.New(context.Background(), osauth.Options{})
	if !errors.Is(err, osauth.ErrUnauthorized) || !strings.Contains(err.Error(), "wrong credentials") {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), vars["OS_PASSWORD"]) {
		t.Fatalf("the error reveals the password: %v", err)
	}
}

func TestNoCredentials(t *testing.T) {
	for _, k := range []string{"OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_CLIENT_CONFIG_FILE"} {
		t.Setenv(k, "")
	}
	if _, err := osauth.New(context.Background(), osauth.Options{}); err == nil {
		t.Fatal("authenticated without credentials")
	}
}

// TestCloudsYAML: OS_CLOUD with the clouds.yaml of openstack-up.sh; a copy
// readable by others is refused.
func TestCloudsYAML(t *testing.T) {
	osauthtest.Setup(t)
	src := filepath.Join(filepath.Dir(os.Getenv("GOSTREE_OPENSTACK_RC")), "clouds.yaml")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID", "OS_PROJECT_NAME"} {
		t.Setenv(k, "")
	}
	p := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	t.Setenv("OS_CLIENT_CONFIG_FILE", p)
	_, err = osauth.New(context.Background(), osauth.Options{Cloud: "gostree"})
	if !errors.Is(err, osauth.ErrInsecureFile) {
		t.Fatalf("group-readable clouds.yaml with a password: %v", err)
	}
	os.Chmod(p, 0o600)
	c, err := osauth.New(context.Background(), osauth.Options{Cloud: "gostree"})
	if err != nil {
		t.Fatal(err)
	}
	canList(t, c)
	t.Setenv("OS_CLOUD", "gostree")
	c, err = osauth.New(context.Background(), osauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	canList(t, c)
	if _, err := osauth.New(context.Background(), osauth.Options{Cloud: "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown cloud: %v", err)
	}
}

func TestApplicationCredential(t *testing.T) {
	vars := osauthtest.Setup(t)
	ctx := context.Background()
	c := osauthtest.Client(t)
	id, err := openstack.NewIdentityV3(c.Provider, c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	user, err := c.Provider.GetAuthResult().(tokens.CreateResult).ExtractUser()
	if err != nil {
		t.Fatal(err)
	}
	ac, err := applicationcredentials.Create(ctx, id, user.ID, applicationcredentials.CreateOpts{Name: osauthtest.Name("gostree-ac")}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { applicationcredentials.Delete(ctx, id, user.ID, ac.ID) })
	for _, k := range []string{"OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_ID", "OS_PROJECT_NAME", "OS_DOMAIN_NAME", "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME"} {
		t.Setenv(k, "")
	}
	t.Setenv("OS_AUTH_TYPE", "v3applicationcredential")
	t.Setenv("OS_APPLICATION_CREDENTIAL_ID", ac.ID)
	t.Setenv("OS_APPLICATION_CREDENTIAL_SECRET", ac.Secret)
	ac2, err := osauth.New(ctx, osauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	canList(t, ac2)

	// Credentials that stop working while the client is in use (the
	// application credential deleted: its tokens are revoked): the next
	// request fails clearly, naming Keystone, not retried.
	other, err := applicationcredentials.Create(ctx, id, user.ID, applicationcredentials.CreateOpts{Name: osauthtest.Name("gostree-ac")}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_APPLICATION_CREDENTIAL_ID", other.ID)
	t.Setenv("OS_APPLICATION_CREDENTIAL_SECRET", other.Secret)
	doomed, err := osauth.New(ctx, osauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := applicationcredentials.Delete(ctx, id, user.ID, other.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	sc, err := openstack.NewObjectStorageV1(doomed.Provider, doomed.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	_, err = containers.List(sc, nil).AllPages(ctx)
	var reauth *gophercloud.ErrUnableToReauthenticate
	if !errors.As(err, &reauth) || !errors.Is(reauth.ErrReauth, osauth.ErrUnauthorized) || !strings.Contains(err.Error(), "wrong credentials") ||
		!strings.Contains(err.Error(), vars["OS_AUTH_URL"]) || osauth.IsRetryable(err) || strings.Contains(err.Error(), other.Secret) {
		t.Fatalf("request after the credential was deleted: %v", err)
	}

	t.Setenv("OS_APPLICATION_CREDENTIAL_ID", ac.ID)
	t.Setenv("OS_APPLICATION_CREDENTIAL_SECRET", "wrong")
	if _, err := osauth.New(ctx, osauth.Options{}); !errors.Is(err, osauth.ErrUnauthorized) {
		t.Fatalf("wrong application credential secret: %v", err)
	}
}

// TestReauth: after the token is revoked, the next request authenticates
// again by itself (AllowReauth), as a long-running agent needs.
func TestReauth(t *testing.T) {
	osauthtest.Setup(t)
	ctx := context.Background()
	c := osauthtest.Client(t)
	old := c.Provider.Token()
	id, err := openstack.NewIdentityV3(c.Provider, c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.Revoke(ctx, id, old).Err; err != nil {
		t.Fatal(err)
	}
	canList(t, c)
	if c.Provider.Token() == old {
		t.Fatal("the token was not renewed")
	}
}

func TestCACert(t *testing.T) {
	osauthtest.Setup(t)
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	_, err := osauth.New(context.Background(), osauth.Options{CACert: bad})
	if err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad CA file: %v", err)
	}
	if _, err := osauth.New(context.Background(), osauth.Options{CACert: bad + ".missing"}); err == nil {
		t.Fatal("missing CA file accepted")
	}
}

// TestKeystoneFaults: token requests answered 503 or cut are retried;
// Keystone down gives, after the retries, a clear retryable error naming
// the endpoint; a re-authentication meeting a flaky Keystone is retried
// too.
func TestKeystoneFaults(t *testing.T) {
	vars := osauthtest.Setup(t)
	ctx := context.Background()
	u, err := url.Parse(vars["OS_AUTH_URL"])
	if err != nil {
		t.Fatal(err)
	}
	proxy := osauthtest.NewFaultProxy(t, u.Scheme+"://"+u.Host)
	t.Setenv("OS_AUTH_URL", proxy.URL+u.Path)
	fast := retry.Policy{Retries: 3, Base: 10 * time.Millisecond}
	for _, f := range []osauthtest.Fault{osauthtest.Answer503, osauthtest.Reset, osauthtest.ForwardThenReset} {
		proxy.Fail(3, f, nil)
		c, err := osauth.New(ctx, osauth.Options{Retry: fast})
		if err != nil {
			t.Fatalf("fault %d, 3 times: %v", f, err)
		}
		if proxy.Failed() != 3 {
			t.Fatalf("fault %d: %d requests failed, want 3", f, proxy.Failed())
		}
		canList(t, c)
	}

	// More failures than retries: the last error, retryable, after 4 attempts.
	proxy.Fail(100, osauthtest.Answer503, nil)
	_, err = osauth.New(ctx, osauth.Options{Retry: fast})
	if err == nil || !osauth.IsRetryable(err) || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("Keystone answering 503: %v", err)
	}
	if proxy.Failed() != 4 {
		t.Fatalf("%d token requests, want 4", proxy.Failed())
	}

	// Re-authentication: revoke the token, make Keystone fail twice; the
	// next Swift request re-authenticates through the retries.
	proxy.Fail(0, osauthtest.Answer503, nil)
	c, err := osauth.New(ctx, osauth.Options{Retry: fast})
	if err != nil {
		t.Fatal(err)
	}
	id, err := openstack.NewIdentityV3(c.Provider, c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	old := c.Provider.Token()
	if err := tokens.Revoke(ctx, id, old).Err; err != nil {
		t.Fatal(err)
	}
	proxy.Fail(2, osauthtest.Reset, func(r *http.Request) bool { return r.Method == http.MethodPost })
	canList(t, c)
	if c.Provider.Token() == old || proxy.Failed() != 2 {
		t.Fatalf("re-authentication: token renewed %v, %d failed token requests (want 2)", c.Provider.Token() != old, proxy.Failed())
	}

	// Keystone down.
	dead := osauthtest.DeadURL(t) + "/v3"
	t.Setenv("OS_AUTH_URL", dead)
	_, err = osauth.New(ctx, osauth.Options{Retry: fast})
	if err == nil || !osauth.IsRetryable(err) || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("Keystone down: %v", err)
	}
	// Wrong credentials are not retried.
	t.Setenv("OS_AUTH_URL", proxy.URL+u.Path)
	t.Setenv("OS_PASSWORD", "wrong")
	n := len(proxy.Requests())
	if _, err := osauth.New(ctx, osauth.Options{Retry: fast}); !errors.Is(err, osauth.ErrUnauthorized) || osauth.IsRetryable(err) {
		t.Fatalf("wrong password: %v", err)
	}
	if got := len(proxy.Requests()) - n; got != 1 {
		t.Fatalf("wrong password: %d token requests, want 1", got)
	}
}
