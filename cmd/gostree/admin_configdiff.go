package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/sysroot"
	"github.com/gostree/gostree/sysroot/etcmerge"
)

func newAdminConfigDiffCommand(a *adminOptions) *cobra.Command {
	var osname string
	cmd := &cobra.Command{
		Use:   "config-diff",
		Short: "List the local changes of /etc against the deployment's defaults (usr/etc)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(false)
			if err != nil {
				return err
			}
			defer s.Close()
			if osname == "" && s.Booted() == nil {
				return fmt.Errorf("%w and no --os= given", sysroot.ErrNotBooted)
			}
			d := s.MergeDeployment(osname)
			if d == nil {
				return errors.New("no deployment to compare (none for this stateroot)")
			}
			dir := s.DeploymentPath(d)
			diff, err := etcmerge.DiffDirs(filepath.Join(dir, "usr/etc"), filepath.Join(dir, "etc"))
			if err != nil {
				return err
			}
			for _, l := range diff.Lines() {
				a.printf("%s\n", l)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&osname, "os", "", "use a different stateroot than the booted one")
	return cmd
}
