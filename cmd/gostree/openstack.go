package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/spf13/cobra"

	"github.com/gostree/gostree/internal/osauth"
	"github.com/gostree/gostree/swift"
)

// osFlags are the openstack-CLI-like authentication flags of the swift and
// glance commands; without them the OS_* variables or $OS_CLOUD are used.
type osFlags struct {
	cloud, cacert, region string
}

func (f *osFlags) add(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.cloud, "os-cloud", "", "cloud in clouds.yaml (default $OS_CLOUD; else the OS_* variables of an openrc)")
	cmd.PersistentFlags().StringVar(&f.cacert, "os-cacert", "", "PEM file of CA certificates to trust (default $OS_CACERT)")
	cmd.PersistentFlags().StringVar(&f.region, "os-region-name", "", "region (default $OS_REGION_NAME or the cloud's)")
}

func (f *osFlags) client(ctx context.Context) (*osauth.Client, error) {
	return osauth.New(ctx, osauth.Options{Cloud: f.cloud, CACert: f.cacert, Region: f.region})
}

// swiftFlags select a repository in a container.
type swiftFlags struct {
	osFlags
	container, prefix string
}

func (f *swiftFlags) add(cmd *cobra.Command) {
	f.osFlags.add(cmd)
	cmd.PersistentFlags().StringVar(&f.container, "container", "", "Swift container holding the repository (required)")
	cmd.PersistentFlags().StringVar(&f.prefix, "prefix", "", "path of the repository inside the container (default: its root)")
}

// open authenticates and returns the container's store, its client and the
// cluster's limits.
func (f *swiftFlags) open(ctx context.Context) (*swift.Store, *osauth.Client, swift.Limits, error) {
	if f.container == "" {
		return nil, nil, swift.Limits{}, errUsage("--container is required")
	}
	c, err := f.client(ctx)
	if err != nil {
		return nil, nil, swift.Limits{}, err
	}
	sc, err := openstack.NewObjectStorageV1(c.Provider, c.Endpoint)
	if err != nil {
		return nil, nil, swift.Limits{}, fmt.Errorf("object-store endpoint: %w", err)
	}
	st, err := swift.New(sc, f.container, f.prefix)
	if err != nil {
		return nil, nil, swift.Limits{}, err
	}
	l, err := swift.GetLimits(ctx, c.HTTP, sc.Endpoint)
	if err != nil {
		return nil, nil, swift.Limits{}, err
	}
	return st, c, l, nil
}

// tempURLKey reads the Temp-URL-Key: from --temp-url-key-file (which must
// not be readable by group or others) or $OS_SWIFT_TEMPURL_KEY.
func tempURLKey(file string) (string, error) {
	if file != "" {
		if err := osauth.CheckSecretFile(file); err != nil {
			return "", err
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return string(trimNL(b)), nil
	}
	if k := os.Getenv("OS_SWIFT_TEMPURL_KEY"); k != "" {
		return k, nil
	}
	return "", errUsage("no TempURL key: use --temp-url-key-file=FILE (mode 0600) or set OS_SWIFT_TEMPURL_KEY")
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
