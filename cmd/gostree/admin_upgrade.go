package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/internal/keyfile"
	"github.com/gostree/gostree/ostree"
)

// upgrade pulls the origin's ref from its remote (refspec REMOTE:REF) into
// the sysroot repository, then deploys the new commit. A refspec without
// a remote names a local ref of the sysroot repository: nothing is pulled.
func newAdminUpgradeCommand(a *adminOptions) *cobra.Command {
	f := &deployFlags{}
	var allowDowngrade, pullOnly, deployOnly bool
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Deploy the newest commit of the current origin (already in the sysroot repository)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(false)
			if err != nil {
				return err
			}
			merge := s.MergeDeployment(f.o.OSName)
			if merge == nil {
				s.Close()
				return errors.New("upgrade: no deployment to upgrade")
			}
			if merge.Origin == nil || merge.Refspec() == "" {
				s.Close()
				return fmt.Errorf("upgrade: deployment %s has no origin refspec (set one with admin set-origin)", merge.Name())
			}
			rev := merge.Refspec()
			oc := merge.Origin.Get("origin", "override-commit", "")
			if remote, ref, ok := strings.Cut(rev, ":"); ok && !deployOnly {
				if oc != "" {
					ref += "@" + oc
				}
				if err := a.pullForUpgrade(cmd, s.Repo(), remote, ref); err != nil {
					s.Close()
					return err
				}
			}
			if pullOnly {
				s.Close()
				return nil
			}
			if oc != "" {
				rev = oc
			}
			c, err := s.Repo().ResolveRev(rev)
			if err != nil {
				s.Close()
				return fmt.Errorf("upgrade: resolving %s in the sysroot repository: %w", rev, err)
			}
			if c == merge.Checksum {
				s.Close()
				a.printf("No update available.\n")
				return nil
			}
			if !allowDowngrade {
				nc, err1 := s.Repo().LoadCommit(c)
				oc, err2 := s.Repo().LoadCommit(merge.Checksum)
				if err1 == nil && err2 == nil && nc.Timestamp < oc.Timestamp {
					s.Close()
					return fmt.Errorf("upgrade: commit %s is chronologically older than the current %s (use --allow-downgrade)", c, merge.Checksum)
				}
			}
			s.Close()
			origin, err := keyfile.Parse(merge.Origin.Bytes())
			if err != nil {
				return err
			}
			origin.DeleteGroup("libostree-transient")
			f.o.Origin = origin
			f.o.Revision = c.String()
			if f.o.OSName == "" {
				f.o.OSName = merge.OSName
			}
			return a.runDeploy(cmd, f)
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&allowDowngrade, "allow-downgrade", false, "permit deploying a commit older than the current one")
	cmd.Flags().BoolVar(&pullOnly, "pull-only", false, "only pull, do not deploy")
	cmd.Flags().BoolVar(&deployOnly, "deploy-only", false, "do not pull, deploy what is already in the repository")
	return cmd
}

// pullForUpgrade pulls REMOTE:REF into the sysroot repository with the
// remote's configured signature checks.
func (a *adminOptions) pullForUpgrade(cmd *cobra.Command, r *ostree.Repo, remote, ref string) error {
	rm, err := r.Remote(r.DefaultRemotesDir(), remote)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	o := ostree.PullOptions{Remote: rm, Refs: []string{ref}}
	if o.CommitVerifier, o.SummaryVerifier, err = remoteVerifiers(r, rm); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	src, err := openRemoteStore(rm, rm.URL(), nil)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	res, err := ostree.Pull(cmd.Context(), r, src, o)
	if err != nil {
		return fmt.Errorf("upgrade: pulling %s:%s: %w", remote, ref, err)
	}
	if res.FetchedMetadata+res.FetchedContent > 0 {
		a.printf("Receiving objects: %d metadata, %d content objects fetched\n", res.FetchedMetadata, res.FetchedContent)
	}
	return nil
}
