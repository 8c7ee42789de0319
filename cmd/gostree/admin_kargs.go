package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/sysroot"
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
				if _, err := s.Get(index); err != nil {
					return err
				}
				targets = targets[index : index+1]
			}
			// Compute every new command line first: an error changes nothing.
			type edit struct {
				d    *sysroot.Deployment
				args []string
			}
			var edits []edit
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
				args, err := sysroot.EditKargs(d.Kargs, app, deleteArgs, replaceArgs)
				if err != nil {
					return fmt.Errorf("deployment %d: %w", d.Index, err)
				}
				edits = append(edits, edit{d, args})
			}
			for _, e := range edits {
				if err := s.SetKargs(e.d, e.args); err != nil {
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
