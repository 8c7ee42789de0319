package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/internal/keyfile"
)

func newAdminSwitchCommand(a *adminOptions) *cobra.Command {
	f := &deployFlags{}
	var noPull bool
	cmd := &cobra.Command{
		Use:   "switch REF",
		Short: "Deploy another branch (keeping the current remote unless REF names one) and make it the origin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(false)
			if err != nil {
				return err
			}
			merge := s.MergeDeployment(f.o.OSName)
			s.Close()
			if merge == nil {
				return errors.New("switch: no deployment to switch from")
			}
			ref := args[0]
			if !strings.Contains(ref, ":") {
				if remote, _, ok := strings.Cut(merge.Refspec(), ":"); ok {
					ref = remote + ":" + ref
				}
			}
			if ref == merge.Refspec() {
				return fmt.Errorf("switch: already tracking %s", ref)
			}
			origin := keyfile.New()
			if merge.Origin != nil {
				if o, err := keyfile.Parse(merge.Origin.Bytes()); err == nil {
					origin = o
				}
			}
			origin.Set("origin", "refspec", ref)
			origin.Delete("origin", "override-commit")
			origin.DeleteGroup("libostree-transient")
			if remote, r, ok := strings.Cut(ref, ":"); ok && !noPull {
				s, err := a.open(false)
				if err != nil {
					return err
				}
				err = a.pullForUpgrade(cmd, s.Repo(), remote, r)
				s.Close()
				if err != nil {
					return err
				}
			}
			f.o.Origin = origin
			f.o.Revision = ref
			if f.o.OSName == "" {
				f.o.OSName = merge.OSName
			}
			return a.runDeploy(cmd, f)
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&noPull, "no-pull", false, "do not pull REMOTE:REF first (it must be in the repository)")
	return cmd
}
