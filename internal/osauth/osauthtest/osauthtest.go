// Package osauthtest gives tests the local OpenStack of
// scripts/openstack-up.sh: Setup loads the openrc named by
// $GOSTREE_OPENSTACK_RC into the test's environment.
//
// Without GOSTREE_OPENSTACK_RC a test skips, unless CI=true (then `make
// test` has started OpenStack and set it, so its absence is a failure).
package osauthtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/gostree/gostree/internal/osauth"
)

// Setup loads the openrc into the environment (t.Setenv) and returns its
// variables. OS_CLOUD is unset so the OS_* variables are used.
func Setup(t testing.TB) map[string]string {
	t.Helper()
	rc := os.Getenv("GOSTREE_OPENSTACK_RC")
	if rc == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GOSTREE_OPENSTACK_RC is not set: run the tests through `make test` (scripts/with-openstack.sh)")
		}
		t.Skip("no local OpenStack: set GOSTREE_OPENSTACK_RC=_build/openstack/openrc after `make openstack-up`")
	}
	vars, err := ReadRC(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLOUD", "")
	for k, v := range vars {
		t.Setenv(k, v)
	}
	return vars
}

// ReadRC parses the `export K=V` lines of an openrc.
func ReadRC(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			vars[k] = strings.Trim(v, `"'`)
		}
	}
	return vars, sc.Err()
}

// Client authenticates with the loaded environment.
func Client(t testing.TB) *osauth.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := osauth.New(ctx, osauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ObjectStore returns an object-storage client.
func ObjectStore(t testing.TB, c *osauth.Client) *gophercloud.ServiceClient {
	t.Helper()
	sc, err := openstack.NewObjectStorageV1(c.Provider, c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// Name returns a unique name for a container or image made by a test.
func Name(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}
