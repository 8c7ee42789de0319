package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/ostree"
)

func newGlancePublishCommand(g *globalOptions, f *osFlags) *cobra.Command {
	var (
		o           glance.PublishOptions
		source      string
		noCheck     bool
		payload     bool
		payloadFrom string
	)
	cmd := &cobra.Command{
		Use:   "publish --source swift://C[/P]|URL [--name N] [--tag T]... REF|COMMIT",
		Short: "Register a Glance image recording a commit of the repository and where to pull it",
		Long: `Register an image whose properties record the commit REF (or COMMIT) names in
--repo: ostree_commit, ostree_ref (when a ref is given, or --ref), ostree_version
(the commit's version, or --version), ostree_osname (--osname) and ostree_repo
(--source). The image is tagged "ostree" and --tag values. Unless --no-check,
the commit must already be published at the source (swift push first).
With --payload the image data is a self-contained static delta to the commit
(from scratch, or from --payload-from), which glance pull downloads (resuming
cut transfers) and applies instead of fetching objects from the source.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if source == "" {
				return errUsage("--source is required (swift://CONTAINER[/PREFIX] or an http(s) URL)")
			}
			src, err := glance.ParseSource(source)
			if err != nil {
				return err
			}
			r, commit, cm, err := g.openCommit(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			o.Commit, o.Source = commit, src
			if o.Ref == "" && !ostree.IsValidChecksum(args[0]) {
				if err := ostree.ValidateRefName(args[0]); err == nil {
					o.Ref = args[0]
				}
			}
			if o.Version == "" {
				o.Version, _ = cm.Metadata.String("version")
			}
			gc, c, err := f.glance(ctx)
			if err != nil {
				return err
			}
			if !noCheck {
				st, err := sourceStore(ctx, c, src)
				if err != nil {
					return err
				}
				if err := checkSource(ctx, st, src, commit); err != nil {
					return fmt.Errorf("%w (publish it there first, or use --no-check)", err)
				}
			}
			if payload || payloadFrom != "" {
				var from ostree.Checksum
				if payloadFrom != "" {
					if from, err = r.ResolveRev(payloadFrom); err != nil {
						return fmt.Errorf("--payload-from: %w", err)
					}
				}
				// Self-contained: every object inline, no fallback objects to fetch.
				if _, _, err := r.GenerateStaticDelta(ctx, ostree.DeltaGenerateOptions{From: from, To: commit, Inline: true, MinFallbackSize: -1}); err != nil {
					return fmt.Errorf("generating the payload: %w", err)
				}
				pf, err := os.Open(filepath.Join(r.Path(), ostree.StaticDeltaSuperblockPath(from, commit)))
				if err != nil {
					return fmt.Errorf("generating the payload: %w", err)
				}
				defer pf.Close()
				fi, err := pf.Stat()
				if err != nil {
					return err
				}
				o.Payload = &glance.Payload{Data: pf, Size: fi.Size(), From: from}
			}
			v, err := gc.Publish(ctx, o)
			if err != nil {
				return err
			}
			printVersion(cmd.OutOrStdout(), v)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&source, "source", "", "where clients pull the commit: swift://CONTAINER[/PREFIX] or the repository's http(s) URL")
	fl.StringVar(&o.Name, "name", "", "image name (default OSNAME-VERSION or REF-VERSION)")
	fl.StringVar(&o.Ref, "ref", "", "ref to record (default: REF when given)")
	fl.StringVar(&o.Version, "version", "", "version to record (default: the commit's version metadata)")
	fl.StringVar(&o.OSName, "osname", "", "OS name (stateroot) to record")
	fl.StringArrayVar(&o.Tags, "tag", nil, "image tag (repeatable); \"ostree\" is always added")
	fl.StringVar(&o.Visibility, "visibility", "", "image visibility: private (default), shared, community or public")
	fl.BoolVar(&noCheck, "no-check", false, "do not check that the source has the commit")
	fl.BoolVar(&payload, "payload", false, "upload a self-contained static delta to the commit as the image data (from scratch, or from --payload-from)")
	fl.StringVar(&payloadFrom, "payload-from", "", "make the payload a delta from this commit (implies --payload)")
	return cmd
}
