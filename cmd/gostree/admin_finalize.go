package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/sysroot"
	"github.com/gostree/gostree/sysroot/etcmerge"
)

func newAdminFinalizeStagedCommand(a *adminOptions) *cobra.Command {
	var compat bool
	cmd := &cobra.Command{
		Use:   "finalize-staged",
		Short: "Finalize the staged deployment: merge /etc now and switch the boot entries (run at shutdown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(true)
			if err != nil {
				return err
			}
			defer s.Close()
			r, err := s.FinalizeStaged(cmd.Context(), etcmerge.Options{OstreeCompat: compat})
			if errors.Is(err, sysroot.ErrNoStaged) {
				a.printf("No staged deployment.\n")
				return nil
			}
			if errors.Is(err, sysroot.ErrFinalizationLocked) {
				// As ostree: a locked staged deployment stays staged
				// and the shutdown goes on.
				a.printf("%v\n", err)
				return nil
			}
			if err != nil {
				return err
			}
			a.printEtcResult(r.Etc)
			a.printWrite(r.Write)
			return nil
		},
	}
	cmd.Flags().BoolVar(&compat, "etc-ostree-compat", false, "merge /etc exactly as ostree 2022.7")
	return cmd
}
