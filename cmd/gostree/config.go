package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func splitConfigKey(s string) (group, key string, err error) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 || i == len(s)-1 {
		return "", "", fmt.Errorf("invalid key %q: want SECTION.KEY, e.g. core.mode", s)
	}
	return s[:i], s[i+1:], nil
}

func newConfigCommand(g *globalOptions) *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "config (get SECTION.KEY | set SECTION.KEY VALUE | unset SECTION.KEY)",
		Short: "Read or change the repository configuration",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			sec, key := group, args[1]
			if group == "" {
				if sec, key, err = splitConfigKey(args[1]); err != nil {
					return err
				}
			}
			cfg := r.Config()
			switch args[0] {
			case "get":
				if len(args) != 2 {
					return errUsage("usage: config get SECTION.KEY")
				}
				v, ok := cfg.String(sec, key)
				if !ok {
					return fmt.Errorf("key file does not have key %q in group %q", key, sec)
				}
				fmt.Fprintln(g.stdout, v)
				return nil
			case "set":
				if len(args) != 3 {
					return errUsage("usage: config set SECTION.KEY VALUE")
				}
				cfg.Set(sec, key, args[2])
				return r.WriteConfig(cfg)
			case "unset":
				if len(args) != 2 {
					return errUsage("usage: config unset SECTION.KEY")
				}
				cfg.Delete(sec, key)
				return r.WriteConfig(cfg)
			}
			return errUsage("unknown config action %q: want get, set or unset", args[0])
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "group name (for groups containing dots, e.g. 'remote \"origin\"')")
	return cmd
}
