// Package osauth authenticates to an OpenStack cloud the way the openstack
// CLI does and returns a gophercloud provider client for Swift and Glance.
//
// Where the credentials come from, first match wins:
//   - a cloud named by Options.Cloud (--os-cloud) or $OS_CLOUD, read from
//     clouds.yaml (+ secure.yaml beside it): $OS_CLIENT_CONFIG_FILE, else
//     ./clouds.yaml, ~/.config/openstack/clouds.yaml (or
//     $XDG_CONFIG_HOME/openstack), /etc/openstack/clouds.yaml;
//   - the OS_* variables of an openrc: OS_AUTH_URL, OS_USERNAME/OS_USERID,
//     OS_PASSWORD, OS_PROJECT_ID/OS_PROJECT_NAME, OS_USER_DOMAIN_NAME/ID,
//     OS_PROJECT_DOMAIN_NAME/ID (or OS_DOMAIN_NAME/ID), OS_REGION_NAME,
//     OS_INTERFACE, OS_CACERT, and application credentials
//     OS_APPLICATION_CREDENTIAL_ID/NAME + OS_APPLICATION_CREDENTIAL_SECRET.
//
// The client re-authenticates by itself when its token expires
// (AllowReauth), for long-running use. HTTPS_PROXY/HTTP_PROXY/NO_PROXY are
// honoured; a custom CA comes from Options.CACert, $OS_CACERT or the
// cloud's cacert. Token requests are retried after transient failures
// (Keystone unreachable or answering 5xx, see IsRetryable) with jittered
// exponential backoff, a bounded number of times. A clouds.yaml or secure.yaml holding a secret
// (password, application credential secret, token) is refused when its
// group or others may read it. Errors never contain secrets.
package osauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"gopkg.in/yaml.v3"

	"github.com/gostree/gostree/internal/retry"
)

// Options select the cloud; every field is optional.
type Options struct {
	// Cloud is the name of a cloud in clouds.yaml (default $OS_CLOUD).
	Cloud string
	// CACert is a PEM file of CA certificates to trust (default $OS_CACERT).
	CACert string
	// Region overrides $OS_REGION_NAME and the cloud's region_name.
	Region string
	// Timeout bounds each HTTP request (default 5 minutes).
	Timeout time.Duration
	// Retry is how token requests to Keystone (the first authentication
	// and every re-authentication) are repeated after transient failures
	// (IsRetryable): zero means retry.Default. Creating a token twice is
	// harmless, so every token request is retried.
	Retry retry.Policy
}

// Client is an authenticated provider client and where to find services.
type Client struct {
	Provider *gophercloud.ProviderClient
	Endpoint gophercloud.EndpointOpts
	// HTTP is the HTTP client of Provider (proxy and TLS settings), for
	// requests gophercloud has no call for.
	HTTP *http.Client
}

// ErrInsecureFile is returned for a secrets file others may read.
var ErrInsecureFile = errors.New("file holding secrets is readable by group or others (chmod 600 it)")

// CheckSecretFile refuses a file holding secrets that group or others may
// read.
func CheckSecretFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s (mode %04o): %w", path, fi.Mode().Perm(), ErrInsecureFile)
	}
	return nil
}

// New authenticates and returns the client.
func New(ctx context.Context, o Options) (*Client, error) {
	cloud := o.Cloud
	if cloud == "" {
		cloud = os.Getenv("OS_CLOUD")
	}
	var (
		ao     gophercloud.AuthOptions
		eo     gophercloud.EndpointOpts
		tlsCfg *tls.Config
		err    error
	)
	if cloud != "" {
		ao, eo, tlsCfg, err = fromCloudsYAML(cloud)
	} else {
		ao, eo, err = fromEnv()
	}
	if err != nil {
		return nil, err
	}
	if o.Region != "" {
		eo.Region = o.Region
	}
	ao.AllowReauth = true
	caFile := o.CACert
	if caFile == "" {
		caFile = os.Getenv("OS_CACERT")
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA certificates: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading CA certificates: no PEM certificate in %s", caFile)
		}
		if tlsCfg == nil {
			tlsCfg = &tls.Config{}
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone() // keeps ProxyFromEnvironment
	// Swift pushes and pulls run dozens of requests at once: keep their
	// connections (the default keeps 2 per host and reconnects for the rest).
	tr.MaxIdleConnsPerHost = 64
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	hc := &http.Client{Transport: tr, Timeout: timeout}
	if ao.IdentityEndpoint == "" {
		return nil, errors.New("no OpenStack credentials: set OS_CLOUD (clouds.yaml) or source an openrc (OS_AUTH_URL, ...)")
	}
	pc, err := openstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("identity endpoint %q: %w", ao.IdentityEndpoint, err)
	}
	pc.HTTPClient = *hc
	pc.UserAgent.Prepend("gostree")
	err = retry.Do(ctx, o.Retry, IsRetryable, func(ctx context.Context) error { return openstack.Authenticate(ctx, pc, ao) })
	if err != nil {
		who := ao.Username
		if who == "" {
			who = ao.UserID
		}
		if who == "" && (ao.ApplicationCredentialID != "" || ao.ApplicationCredentialName != "") {
			who = "application credential " + ao.ApplicationCredentialID + ao.ApplicationCredentialName
		}
		return nil, fmt.Errorf("authenticating to %s as %q: %w", ao.IdentityEndpoint, who, describe(err))
	}
	// Re-authentication (AllowReauth: the token expired or was revoked) is
	// retried the same way, so a Keystone restart does not fail a
	// long-running transfer.
	if reauth := pc.ReauthFunc; reauth != nil {
		pc.ReauthFunc = func(ctx context.Context) error {
			if err := retry.Do(ctx, o.Retry, IsRetryable, reauth); err != nil {
				return fmt.Errorf("authenticating again to %s: %w", ao.IdentityEndpoint, describe(err))
			}
			return nil
		}
	}
	return &Client{Provider: pc, Endpoint: eo, HTTP: hc}, nil
}

// describe turns gophercloud's HTTP errors into short messages.
func describe(err error) error {
	switch {
	case gophercloud.ResponseCodeIs(err, http.StatusUnauthorized):
		return fmt.Errorf("wrong credentials (HTTP 401): %w", ErrUnauthorized)
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound) && keystoneCouldNotFind(err):
		// Keystone's answer for an application credential it does not know.
		return fmt.Errorf("wrong credentials (HTTP 404: no such user or application credential): %w", ErrUnauthorized)
	}
	return err
}

func keystoneCouldNotFind(err error) bool {
	var ue gophercloud.ErrUnexpectedResponseCode
	return errors.As(err, &ue) && strings.Contains(string(ue.Body), "Could not find")
}

// ErrUnauthorized is wrapped by the error of New for rejected credentials.
var ErrUnauthorized = errors.New("unauthorized")

func fromEnv() (gophercloud.AuthOptions, gophercloud.EndpointOpts, error) {
	ao, err := openstack.AuthOptionsFromEnv()
	if err != nil {
		return ao, gophercloud.EndpointOpts{}, fmt.Errorf("OpenStack credentials from OS_* variables: %w", err)
	}
	// AuthOptionsFromEnv knows OS_DOMAIN_*, not the openstack CLI's
	// OS_USER_DOMAIN_* / OS_PROJECT_DOMAIN_*.
	if ao.DomainID == "" && ao.DomainName == "" && ao.UserID == "" && ao.ApplicationCredentialID == "" {
		ao.DomainID = os.Getenv("OS_USER_DOMAIN_ID")
		ao.DomainName = os.Getenv("OS_USER_DOMAIN_NAME")
	}
	if ao.TenantID == "" && ao.TenantName != "" && ao.ApplicationCredentialID == "" && ao.ApplicationCredentialName == "" {
		pd, pdn := os.Getenv("OS_PROJECT_DOMAIN_ID"), os.Getenv("OS_PROJECT_DOMAIN_NAME")
		if pd == "" && pdn == "" {
			pd, pdn = ao.DomainID, ao.DomainName
		}
		ao.Scope = &gophercloud.AuthScope{ProjectName: ao.TenantName, DomainID: pd, DomainName: pdn}
	}
	if ao.ApplicationCredentialID != "" || ao.ApplicationCredentialName != "" {
		// An application credential carries its own scope.
		ao.TenantID, ao.TenantName, ao.Scope = "", "", nil
	}
	eo := gophercloud.EndpointOpts{Region: os.Getenv("OS_REGION_NAME")}
	switch os.Getenv("OS_INTERFACE") {
	case "internal", "internalURL":
		eo.Availability = gophercloud.AvailabilityInternal
	case "admin", "adminURL":
		eo.Availability = gophercloud.AvailabilityAdmin
	}
	return ao, eo, nil
}

// cloudsLocations is where clouds.yaml is looked for, as the openstack CLI does.
func cloudsLocations() []string {
	if p := os.Getenv("OS_CLIENT_CONFIG_FILE"); p != "" {
		return []string{p}
	}
	var locs []string
	if wd, err := os.Getwd(); err == nil {
		locs = append(locs, filepath.Join(wd, "clouds.yaml"))
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		locs = append(locs, filepath.Join(x, "openstack", "clouds.yaml"))
	} else if h, err := os.UserHomeDir(); err == nil {
		locs = append(locs, filepath.Join(h, ".config", "openstack", "clouds.yaml"))
	}
	return append(locs, "/etc/openstack/clouds.yaml")
}

func fromCloudsYAML(cloud string) (gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config, error) {
	var (
		path string
		data []byte
	)
	for _, p := range cloudsLocations() {
		b, err := os.ReadFile(p)
		if err == nil {
			path, data = p, b
			break
		}
	}
	if path == "" {
		return gophercloud.AuthOptions{}, gophercloud.EndpointOpts{}, nil,
			fmt.Errorf("cloud %q: no clouds.yaml found (looked in %v)", cloud, cloudsLocations())
	}
	opts := []clouds.ParseOption{clouds.WithCloudName(cloud), clouds.WithCloudsYAML(bytes.NewReader(data))}
	if err := checkSecrets(path, data, cloud); err != nil {
		return gophercloud.AuthOptions{}, gophercloud.EndpointOpts{}, nil, err
	}
	secure := filepath.Join(filepath.Dir(path), "secure.yaml")
	if sd, err := os.ReadFile(secure); err == nil {
		if err := checkSecrets(secure, sd, cloud); err != nil {
			return gophercloud.AuthOptions{}, gophercloud.EndpointOpts{}, nil, err
		}
		opts = append(opts, clouds.WithSecureYAML(bytes.NewReader(sd)))
	}
	ao, eo, tlsCfg, err := clouds.Parse(opts...)
	if err != nil {
		return ao, eo, nil, fmt.Errorf("cloud %q in %s: %w", cloud, path, err)
	}
	return ao, eo, tlsCfg, nil
}

// checkSecrets refuses a group/other-readable file whose entry for cloud
// holds a secret.
func checkSecrets(path string, data []byte, cloud string) error {
	var doc clouds.Clouds
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	c, ok := doc.Clouds[cloud]
	if !ok || c.AuthInfo == nil {
		return nil
	}
	a := c.AuthInfo
	if a.Password == "" && a.ApplicationCredentialSecret == "" && a.Token == "" {
		return nil
	}
	return CheckSecretFile(path)
}
