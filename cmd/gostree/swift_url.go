package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/swift"
)

func newSwiftURLCommand(g *globalOptions, f *swiftFlags) *cobra.Command {
	var (
		temp    bool
		ttl     time.Duration
		digest  string
		keyFile string
	)
	cmd := &cobra.Command{
		Use:   "url --container C [--prefix P] [--temp-url [--ttl D] [--digest sha256|sha512]]",
		Short: "Print the URL clients pull the published repository from",
		Long: `Print the repository's URL: the plain container URL (for a public container),
or with --temp-url a prefix TempURL granting GET/HEAD on the repository until
--ttl from now, signed with the Temp-URL-Key (--temp-url-key-file or
$OS_SWIFT_TEMPURL_KEY) using sha256 or sha512. A prefix TempURL works as a
gostree remote URL; ostree 2022.7 cannot use it (it appends object paths after
the query string). The TempURL is a secret: anyone holding it can read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, _, limits, err := f.open(ctx)
			if err != nil {
				return err
			}
			if !temp {
				fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSuffix(st.URL(), "/"))
				return nil
			}
			if limits.TempURLDigests == nil {
				return fmt.Errorf("the Swift cluster has no tempurl middleware (/info)")
			}
			allowed := false
			for _, d := range limits.TempURLDigests {
				allowed = allowed || d == digest
			}
			if !allowed {
				return fmt.Errorf("the Swift cluster accepts TempURL digests %v, not %s", limits.TempURLDigests, digest)
			}
			key, err := tempURLKey(keyFile)
			if err != nil {
				return err
			}
			s := swift.Signer{AccountURL: st.Client().Endpoint, Key: key, Digest: digest}
			u, err := s.PrefixURL(st.Container(), st.Prefix(), time.Now().Add(ttl))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), u)
			return nil
		},
	}
	cmd.Flags().BoolVar(&temp, "temp-url", false, "print a prefix TempURL instead of the plain URL")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the TempURL is valid")
	cmd.Flags().StringVar(&digest, "digest", swift.DigestSHA256, "TempURL signature digest: sha256 or sha512")
	cmd.Flags().StringVar(&keyFile, "temp-url-key-file", "", "file holding the Temp-URL-Key (mode 0600)")
	return cmd
}
