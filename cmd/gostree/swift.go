package main

import (
	"github.com/spf13/cobra"
)

func newSwiftCommand(g *globalOptions) *cobra.Command {
	var f swiftFlags
	cmd := &cobra.Command{
		Use:   "swift",
		Short: "Publish the repository to OpenStack Swift, and clean it there",
		Long: `Publish the repository (--repo, an archive repository) to a Swift container.

Authentication is the openstack CLI's: --os-cloud / $OS_CLOUD with clouds.yaml,
or the OS_* variables of an openrc (password or application credential).
Clients pull the published repository over plain HTTP from a public
container (swift push --public; stock "ostree pull" works), with TempURLs
(swift url --temp-url), or with a token (swift pull).`,
	}
	f.add(cmd)
	cmd.AddCommand(newSwiftPushCommand(g, &f), newSwiftPruneCommand(g, &f), newSwiftURLCommand(g, &f), newSwiftPullCommand(g, &f))
	return cmd
}
