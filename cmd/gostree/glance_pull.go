package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newGlancePullCommand(g *globalOptions, f *osFlags) *cobra.Command {
	var (
		pf     pullFlags
		rd     remotesDir
		remote string
	)
	cmd := &cobra.Command{
		Use:   "pull [--remote NAME] IMAGE-ID|NAME",
		Short: "Pull the exact commit an image records, from the source it names",
		Long: `Resolve the image, then pull exactly the commit it records (REF@COMMIT) from its
source: a Swift container (with the Keystone token) or an HTTP(S) repository.
Image properties are not a trust anchor: with --remote NAME the refs are written
as NAME:REF and that remote's gpg-verify/sign-verify settings and keys decide
which commit signatures are required, as for any pull; without it no signature
is required and the ref goes to refs/heads.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			gc, c, err := f.glance(ctx)
			if err != nil {
				return err
			}
			v, err := gc.Resolve(ctx, args[0])
			if err != nil {
				return err
			}
			o := pf.options()
			if v.Ref != "" {
				o.Refs = []string{v.Ref + "@" + v.Commit.String()}
			} else {
				o.Refs = []string{v.Commit.String()}
			}
			if remote != "" {
				if o.Remote, err = r.Remote(rd.get(r), remote); err != nil {
					return err
				}
				if o.CommitVerifier, o.SummaryVerifier, err = remoteVerifiers(r, o.Remote); err != nil {
					return err
				}
			}
			src, err := sourceStore(ctx, c, v.Source)
			if err != nil {
				return err
			}
			stop := progressPrinter(g.stdout, &o)
			res, err := ostree.Pull(ctx, r, src, o)
			stop()
			if err != nil {
				return fmt.Errorf("image %s: pulling commit %s from %s: %w", v.ImageID, v.Commit, v.Source, err)
			}
			printPullResult(g.stdout, res)
			return nil
		},
	}
	pf.add(cmd)
	rd.flag(cmd)
	cmd.Flags().StringVar(&remote, "remote", "", "remote whose signature settings and keys apply; refs are written as REMOTE:REF")
	return cmd
}
