package main

import (
	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newCheckoutCommand(g *globalOptions) *cobra.Command {
	var o ostree.CheckoutOptions
	var forceCopy bool
	cmd := &cobra.Command{
		Use:   "checkout [OPTIONS] COMMIT [DESTINATION]",
		Short: "Check out a commit into a filesystem tree",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			c, err := r.ResolveRev(args[0])
			if err != nil {
				return err
			}
			dest := args[0]
			if len(args) == 2 {
				dest = args[1]
			}
			o.Hardlink = !forceCopy
			return r.Checkout(cmd.Context(), c, dest, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.UserMode, "user-mode", "U", false, "do not change file ownership or set special permissions")
	f.BoolVarP(&o.RequireHardlinks, "require-hardlinks", "H", false, "fail rather than copy if hard links are not possible")
	f.BoolVarP(&forceCopy, "force-copy", "C", false, "never hard-link, always copy")
	f.BoolVar(&o.Union, "union", false, "keep existing directories, overwrite existing files")
	f.StringVar(&o.Subpath, "subpath", "", "check out only this subdirectory or file")
	return cmd
}
