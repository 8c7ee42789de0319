package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newAdminKargsCommand(a *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kargs",
		Short: "Change kernel arguments",
	}
	var appendArgs, deleteArgs, replaceArgs, appendIfMissing []string
	var index int
	edit := &cobra.Command{
		Use:   "edit-in-place",
		Short: "Change the kernel arguments of existing deployments in place (all, or --deployment-index)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(appendArgs)+len(deleteArgs)+len(replaceArgs)+len(appendIfMissing) == 0 {
				return errors.New("kargs edit-in-place: nothing to do (use --append, --append-if-missing, --delete or --replace)")
			}
			s, err := a.open(true)
			if err != nil {
				return err
			}
			defer s.Close()
			targets := s.Deployments
			if index >= 0 {
				d, err := s.Get(index)
				if err != nil {
					return err
				}
				targets = targets[index : index+1]
				_ = d
			}
			for _, d := range targets {
				if d.Staged {
					continue
				}
				app := append([]string(nil), appendArgs...)
				for _, k := range appendIfMissing {
					found := false
					for _, x := range d.Kargs {
						found = found || x == k
					}
					if !found {
						app = append(app, k)
					}
				}
				if err := s.KargsEdit(d, app, deleteArgs, replaceArgs); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := edit.Flags()
	f.StringArrayVar(&appendArgs, "append", nil, "append kernel argument")
	f.StringArrayVar(&appendIfMissing, "append-if-missing", nil, "append kernel argument unless present")
	f.StringArrayVar(&deleteArgs, "delete", nil, "delete kernel argument (KEY=VALUE, or KEY for all values)")
	f.StringArrayVar(&replaceArgs, "replace", nil, "replace KEY=VALUE")
	f.IntVar(&index, "deployment-index", -1, "only this deployment")
	cmd.AddCommand(edit)
	return cmd
}
