package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/internal/keyfile"
)

func newAdminSetOriginCommand(a *adminOptions) *cobra.Command {
	var index int
	var sets []string
	cmd := &cobra.Command{
		Use:   "set-origin REMOTENAME URL [BRANCH]",
		Short: "Add (or update) a remote and point a deployment's origin at REMOTENAME:BRANCH",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(true)
			if err != nil {
				return err
			}
			defer s.Close()
			d := s.MergeDeployment("")
			if index >= 0 {
				if d, err = s.Get(index); err != nil {
					return err
				}
			}
			if d == nil {
				return fmt.Errorf("no deployment to set the origin of")
			}
			remote, url := args[0], args[1]
			branch := ""
			if len(args) == 3 {
				branch = args[2]
			} else {
				ref := d.Refspec()
				if _, r, ok := strings.Cut(ref, ":"); ok {
					ref = r
				}
				branch = ref
			}
			if branch == "" {
				return fmt.Errorf("no BRANCH given and the deployment's origin has none")
			}
			r := s.Repo()
			cfg := r.Config()
			group := fmt.Sprintf("remote \"%s\"", remote)
			cfg.Set(group, "url", url)
			for _, kv := range sets {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("invalid --set=%s: want KEY=VALUE", kv)
				}
				cfg.Set(group, k, v)
			}
			if err := r.WriteConfig(cfg); err != nil {
				return err
			}
			origin := d.Origin
			if origin == nil {
				origin = keyfile.New()
			}
			origin.Set("origin", "refspec", remote+":"+branch)
			_, err = s.SetOrigin(d.Index, origin)
			return err
		},
	}
	cmd.Flags().IntVar(&index, "index", -1, "the deployment to change (default: the booted/merge one)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "set remote option KEY=VALUE")
	return cmd
}
