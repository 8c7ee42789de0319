package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/ostree"
)

func newGlancePullCommand(g *globalOptions, f *osFlags) *cobra.Command {
	var (
		pf        pullFlags
		rd        remotesDir
		remote    string
		noPayload bool
	)
	cmd := &cobra.Command{
		Use:   "pull [--remote NAME] IMAGE-ID|NAME",
		Short: "Pull the exact commit an image records, from the source it names",
		Long: `Resolve the image, then pull exactly the commit it records (REF@COMMIT) from its
source: a Swift container (with the Keystone token) or an HTTP(S) repository;
or, when the image carries a payload (publish --payload), download it (resuming
a cut transfer, also across runs, checked against Glance's os_hash_value) and
apply it in one transaction.
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
			if v.HasPayload() && !noPayload {
				return pullPayload(cmd, r, gc, v, o)
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
	cmd.Flags().BoolVar(&noPayload, "no-payload", false, "pull objects from the source even when the image carries a payload")
	return cmd
}

// pullPayload downloads the image's static-delta payload into the
// repository's tmp/ (kept there across runs until complete, so a later run
// resumes it) and applies it.
func pullPayload(cmd *cobra.Command, r *ostree.Repo, gc *glance.Client, v *glance.Version, o ostree.PullOptions) error {
	ctx := cmd.Context()
	ao := glance.ApplyOptions{Verifier: o.CommitVerifier}
	if o.Remote != nil {
		gpg, err := o.Remote.GPGVerify()
		if err != nil {
			return err
		}
		sig, err := o.Remote.SignVerify()
		if err != nil {
			return err
		}
		if (gpg || sig) && o.CommitVerifier == nil {
			return fmt.Errorf("image %s: remote %q requires signed commits: %w", v.ImageID, o.Remote.Name, ostree.ErrVerifierRequired)
		}
	}
	if v.Ref != "" {
		rs := ostree.Refspec{Ref: v.Ref}
		if o.Remote != nil {
			rs.Remote = o.Remote.Name
		}
		ao.Ref = &rs
	}
	if o.DryRun {
		fmt.Fprintf(cmd.OutOrStdout(), "would apply the %d-byte payload of image %s: commit %s\n", v.PayloadSize, v.ImageID, v.Commit)
		return nil
	}
	path := filepath.Join(r.Path(), "tmp", "glance-payload-"+v.ImageID)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := gc.DownloadPayload(ctx, v, f, glance.DownloadOptions{}); err != nil {
		return err
	}
	if err := glance.ApplyPayload(ctx, r, v, f, ao); err != nil {
		return err
	}
	os.Remove(path)
	fmt.Fprintf(cmd.OutOrStdout(), "applied the %d-byte payload of image %s: commit %s\n", v.PayloadSize, v.ImageID, v.Commit)
	return nil
}
