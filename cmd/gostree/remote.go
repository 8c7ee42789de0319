package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

// remotesDir is the --remotes-dir value shared by remote and pull.
type remotesDir struct{ dir string }

func (d *remotesDir) flag(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&d.dir, "remotes-dir", "", "directory of *.conf remote files (default: "+ostree.SystemRemotesDir+" for the system repository, none otherwise)")
}

func (d *remotesDir) get(r *ostree.Repo) string {
	if d.dir != "" {
		return d.dir
	}
	return r.DefaultRemotesDir()
}

func newRemoteCommand(g *globalOptions) *cobra.Command {
	var rd remotesDir
	cmd := &cobra.Command{
		Use:   "remote COMMAND",
		Short: "Manage remote repositories",
	}
	rd.flag(cmd)
	cmd.AddCommand(
		newRemoteAddCommand(g, &rd),
		newRemoteDeleteCommand(g, &rd),
		newRemoteListCommand(g, &rd),
		newRemoteShowURLCommand(g, &rd),
		newRemoteSummaryCommand(g, &rd),
		newRemoteRefsCommand(g, &rd),
		newRemoteGPGImportCommand(g, &rd),
	)
	return cmd
}

func newRemoteAddCommand(g *globalOptions, rd *remotesDir) *cobra.Command {
	var noGPG, ifNotExists bool
	var sets []string
	cmd := &cobra.Command{
		Use:   "add [OPTIONS] NAME URL [BRANCH...]",
		Short: "Add a remote repository",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			rm := ostree.NewRemote(args[0], args[1])
			if len(args) > 2 {
				rm.Set("branches", strings.Join(args[2:], ";")+";")
			}
			for _, kv := range sets {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return errUsage("invalid --set=%s: want KEY=VALUE", kv)
				}
				rm.Set(k, v)
			}
			if noGPG {
				rm.Set("gpg-verify", "false")
			}
			err = r.AddRemote(rd.get(r), rm)
			if ifNotExists && errors.Is(err, ostree.ErrRemoteExists) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noGPG, "no-gpg-verify", false, "disable GPG verification of commits")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "do nothing if the remote exists")
	f.StringArrayVar(&sets, "set", nil, "KEY=VALUE: set a configuration key of the remote")
	return cmd
}

func newRemoteDeleteCommand(g *globalOptions, rd *remotesDir) *cobra.Command {
	var ifExists bool
	cmd := &cobra.Command{
		Use:   "delete [--if-exists] NAME",
		Short: "Delete a remote repository and its refs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			err = r.DeleteRemote(rd.get(r), args[0])
			if ifExists && errors.Is(err, ostree.ErrNotFound) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "do nothing if the remote does not exist")
	return cmd
}

func newRemoteListCommand(g *globalOptions, rd *remotesDir) *cobra.Command {
	var showURLs bool
	cmd := &cobra.Command{
		Use:   "list [-u]",
		Short: "List remote repositories",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			rms, err := r.Remotes(rd.get(r))
			if err != nil {
				return err
			}
			width := 0
			for _, rm := range rms {
				width = max(width, len(rm.Name))
			}
			for _, rm := range rms {
				if showURLs {
					fmt.Fprintf(g.stdout, "%-*s  %s\n", width, rm.Name, rm.URL())
				} else {
					fmt.Fprintln(g.stdout, rm.Name)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&showURLs, "show-urls", "u", false, "show the URLs")
	return cmd
}

func newRemoteShowURLCommand(g *globalOptions, rd *remotesDir) *cobra.Command {
	return &cobra.Command{
		Use:   "show-url NAME",
		Short: "Print the URL of a remote",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			rm, err := r.Remote(rd.get(r), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, rm.URL())
			return nil
		},
	}
}

// fetchRemoteSummary fetches (and, when the remote asks for it, verifies)
// the summary of the named remote; the summary is nil when the server has
// none.
func fetchRemoteSummary(ctx context.Context, g *globalOptions, rd *remotesDir, name string) (*ostree.Remote, *ostree.Summary, error) {
	r, err := g.openRepo()
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	rm, err := r.Remote(rd.get(r), name)
	if err != nil {
		return nil, nil, err
	}
	src, err := openRemoteStore(rm, rm.URL(), nil)
	if err != nil {
		return nil, nil, err
	}
	_, sv, err := remoteVerifiers(r, rm)
	if err != nil {
		return nil, nil, err
	}
	s, _, err := ostree.FetchSummary(ctx, src, rm, sv)
	return rm, s, err
}

func newRemoteSummaryCommand(g *globalOptions, rd *remotesDir) *cobra.Command {
	var raw bool
	cmd := &cobra.Command{
		Use:   "summary NAME",
		Short: "Fetch and print the summary of a remote",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rm, s, err := fetchRemoteSummary(cmd.Context(), g, rd, args[0])
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("remote %s has no summary file", rm.Name)
			}
			fmt.Fprint(g.stdout, s.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&raw, "raw", false, "same output (accepted for compatibility)")
	return cmd
}

func newRemoteRefsCommand(g *globalOptions, rd *remotesDir) *cobra.Command {
	return &cobra.Command{
		Use:   "refs NAME",
		Short: "List the refs a remote's summary offers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rm, s, err := fetchRemoteSummary(cmd.Context(), g, rd, args[0])
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("remote refs not available; server has no summary file")
			}
			for _, ref := range s.Refs {
				fmt.Fprintf(g.stdout, "%s:%s\n", rm.Name, ref.Name)
			}
			return nil
		},
	}
}
