package main

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/spf13/cobra"

	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/internal/osauth"
	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/httpstore"
	"github.com/gostree/gostree/swift"
)

func newGlanceCommand(g *globalOptions) *cobra.Command {
	var f osFlags
	cmd := &cobra.Command{
		Use:   "glance",
		Short: "Record commits as OpenStack Glance images, resolve images to commits",
		Long: `Glance as the catalogue of published versions: an image records a commit
(ostree_commit), its ref, version and OS name, and where to pull it from
(ostree_repo: swift://CONTAINER[/PREFIX] or an http(s) URL). The image holds no
data. Image properties are not trusted for authenticity: the commit's signature
is verified after the pull, with the keys of the remote (glance pull --remote).`,
	}
	f.add(cmd)
	cmd.AddCommand(newGlancePublishCommand(g, &f), newGlanceResolveCommand(g, &f), newGlanceListCommand(g, &f), newGlancePullCommand(g, &f))
	return cmd
}

func (f *osFlags) glance(ctx context.Context) (*glance.Client, *osauth.Client, error) {
	c, err := f.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	ic, err := openstack.NewImageV2(c.Provider, c.Endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("image endpoint: %w", err)
	}
	return glance.New(ic), c, nil
}

// sourceStore opens where a published commit lives: a Swift container (with
// the token of c) or an HTTP(S) repository.
func sourceStore(ctx context.Context, c *osauth.Client, src glance.Source) (store.Store, error) {
	if !src.IsSwift() {
		return httpstore.New(src.URL, httpstore.Options{UserAgent: "gostree"})
	}
	sc, err := openstack.NewObjectStorageV1(c.Provider, c.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("object-store endpoint: %w", err)
	}
	return swift.New(sc, src.Container, src.Prefix)
}

// checkSource makes sure the source has the commit object.
func checkSource(ctx context.Context, st store.Store, src glance.Source, commit ostree.Checksum) error {
	p := ostree.LoosePath(ostree.ObjectName{Checksum: commit, Type: ostree.ObjCommit}, ostree.ModeArchive)
	if _, err := st.Stat(ctx, p); err != nil {
		return fmt.Errorf("commit %s is not in %s: %w", commit, src, err)
	}
	return nil
}

func printVersion(w interface{ Write([]byte) (int, error) }, v *glance.Version) {
	fmt.Fprintf(w, "image    %s (%s)\n", v.ImageID, v.Name)
	fmt.Fprintf(w, "commit   %s\n", v.Commit)
	for _, kv := range [][2]string{{"ref", v.Ref}, {"version", v.Version}, {"osname", v.OSName}} {
		if kv[1] != "" {
			fmt.Fprintf(w, "%-8s %s\n", kv[0], kv[1])
		}
	}
	fmt.Fprintf(w, "source   %s\n", v.Source)
	if v.Payload != "" {
		from := "scratch"
		if !v.PayloadFrom.IsZero() {
			from = v.PayloadFrom.String()
		}
		fmt.Fprintf(w, "payload  %s from %s, %d bytes, %s %s\n", v.Payload, from, v.PayloadSize, v.PayloadHashAlgo, v.PayloadHash)
	}
}
