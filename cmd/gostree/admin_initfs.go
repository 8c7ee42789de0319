package main

import (
	"github.com/spf13/cobra"

	"github.com/gostree/gostree/sysroot"
)

func newAdminInitFSCommand(a *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "init-fs PATH",
		Short: "Create the top-level layout of a new sysroot (boot, ostree/deploy, a bare ostree/repo, ...)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sysroot.InitFS(args[0])
		},
	}
}
