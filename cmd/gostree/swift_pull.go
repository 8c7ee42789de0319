package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/swift"
)

func newSwiftPullCommand(g *globalOptions, f *swiftFlags) *cobra.Command {
	var (
		pf      pullFlags
		rd      remotesDir
		remote  string
		temp    bool
		digest  string
		keyFile string
	)
	cmd := &cobra.Command{
		Use:   "pull --container C [--prefix P] [--remote NAME] [--temp-url] REF...",
		Short: "Pull refs from a repository in a Swift container, with a token or TempURLs",
		Long: `Pull refs from the repository published in a Swift container into --repo,
authenticated with a Keystone token, or with --temp-url through TempURLs signed
per request with the Temp-URL-Key (--temp-url-key-file or $OS_SWIFT_TEMPURL_KEY).
With --remote NAME the refs are written as NAME:REF and that remote's
gpg-verify/sign-verify settings and keys decide which signatures are required;
without it the refs go to refs/heads and no signature is required.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			o := pf.options()
			o.Refs = args
			if remote != "" {
				if o.Remote, err = r.Remote(rd.get(r), remote); err != nil {
					return err
				}
				if o.CommitVerifier, o.SummaryVerifier, err = remoteVerifiers(r, o.Remote); err != nil {
					return err
				}
			}
			st, c, _, err := f.open(ctx)
			if err != nil {
				return err
			}
			var src store.Store = st
			if temp {
				key, err := tempURLKey(keyFile)
				if err != nil {
					return err
				}
				s := swift.Signer{AccountURL: st.Client().Endpoint, Key: key, Digest: digest}
				if src, err = swift.NewTempURLStore(s, st.Container(), st.Prefix(), 10*time.Minute, c.HTTP); err != nil {
					return err
				}
			}
			stop := progressPrinter(g.stdout, &o)
			res, err := ostree.Pull(ctx, r, src, o)
			stop()
			if err != nil {
				return err
			}
			printPullResult(g.stdout, res)
			return nil
		},
	}
	pf.add(cmd)
	rd.flag(cmd)
	cmd.Flags().StringVar(&remote, "remote", "", "remote whose signature settings apply; refs are written as REMOTE:REF")
	cmd.Flags().BoolVar(&temp, "temp-url", false, "read through TempURLs instead of with the token")
	cmd.Flags().StringVar(&digest, "digest", swift.DigestSHA256, "TempURL signature digest: sha256 or sha512")
	cmd.Flags().StringVar(&keyFile, "temp-url-key-file", "", "file holding the Temp-URL-Key (mode 0600)")
	return cmd
}
