package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/gvariant"
	"github.com/gostree/gostree/ostree/sign"
)

func newSummaryCommand(g *globalOptions) *cobra.Command {
	var update, view, raw bool
	var addMeta []string
	var signing signingFlags
	cmd := &cobra.Command{
		Use:   "summary (-u | --view) [OPTIONS]",
		Short: "Regenerate or show the repository summary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			switch {
			case update:
				var o ostree.SummaryOptions
				for _, kv := range addMeta {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return fmt.Errorf("invalid --add-metadata=%s: want KEY=VALUE", kv)
					}
					o.AdditionalMetadata.Set(k, gvariant.NewVariant("s", v))
				}
				signers, err := signing.signers(time.Now())
				if err != nil {
					return err
				}
				if _, err := r.RegenerateSummary(cmd.Context(), o); err != nil {
					return err
				}
				if len(signers) > 0 {
					return sign.SignSummary(cmd.Context(), r, signers)
				}
				return nil
			case signing.requested():
				signers, err := signing.signers(time.Now())
				if err != nil {
					return err
				}
				return sign.SignSummary(cmd.Context(), r, signers)
			case view || raw:
				s, err := r.ReadSummary()
				if err != nil {
					if os.IsNotExist(err) {
						return fmt.Errorf("the repository has no summary file: run `summary -u` first")
					}
					return err
				}
				fmt.Fprint(g.stdout, s.String())
				return nil
			}
			return errUsage("summary needs -u (update) or --view")
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&update, "update", "u", false, "regenerate the summary file")
	f.BoolVarP(&view, "view", "v", false, "print the summary")
	f.BoolVar(&raw, "raw", false, "same as --view")
	f.StringArrayVarP(&addMeta, "add-metadata", "m", nil, "KEY=VALUE: add a string key to the summary metadata")
	signing.addFlags(f)
	return cmd
}
