package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/internal/keyfile"
)

// upgrade resolves the origin in the sysroot repository. Pulling from the
// origin's remote is not wired in yet (ostree/pull.go is being written):
// the new commit must already be in the repo (e.g. `gostree pull
// --repo=SYSROOT/ostree/repo` or a local commit).
func newAdminUpgradeCommand(a *adminOptions) *cobra.Command {
	f := &deployFlags{}
	var allowDowngrade bool
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
			if oc := merge.Origin.Get("origin", "override-commit", ""); oc != "" {
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
	return cmd
}
