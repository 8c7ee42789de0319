package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree/sign"
)

func newGPGSignCommand(g *globalOptions) *cobra.Command {
	var keys gpgKeyFlags
	var del bool
	cmd := &cobra.Command{
		Use:   "gpg-sign [OPTIONS] COMMIT KEY-ID...",
		Short: "Sign a commit with GPG (or delete its signatures)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, c, _, err := g.openCommit(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			ids := args[1:]
			if del {
				n, err := sign.DeleteCommitGPGSignatures(cmd.Context(), r, c, ids)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "Signatures deleted: %d\n", n)
				return nil
			}
			kr, err := keys.secretKeys()
			if err != nil {
				return err
			}
			now := time.Now()
			var signers []sign.Signer
			for _, id := range ids {
				k, err := kr.SigningKey(id, now)
				if err != nil {
					return err
				}
				signers = append(signers, sign.GPGSigner{Key: k, Options: sign.SignOptions{Time: now}})
			}
			return sign.SignCommit(cmd.Context(), r, c, signers)
		},
	}
	f := cmd.Flags()
	keys.addFlags(f)
	f.BoolVarP(&del, "delete", "d", false, "delete the signatures made by the KEY-IDs")
	return cmd
}
