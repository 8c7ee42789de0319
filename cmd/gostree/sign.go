package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/sign"
)

func newSignCommand(g *globalOptions) *cobra.Command {
	var signType, keysFile string
	var verify bool
	cmd := &cobra.Command{
		Use:   "sign [OPTIONS] COMMIT [KEY...]",
		Short: "Sign a commit with ed25519 keys, or verify its signatures (--verify)",
		Long: "Without --verify, KEYs are base64 secret keys (seed and public key, 64 bytes) and --keys-file\n" +
			"a file of them (mode 0600). With --verify, KEYs are base64 public keys and --keys-file a file\n" +
			"of them; with neither, the system trust stores (trusted.ed25519 in /etc/ostree and\n" +
			"/usr/share/ostree) are used.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSignType(signType); err != nil {
				return err
			}
			r, c, _, err := g.openCommit(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			if verify {
				return runSignVerify(g, r, c, args[1:], keysFile)
			}
			keys, err := ed25519SecretKeys(signType, args[1:], keysFile)
			if err != nil {
				return err
			}
			var signers []sign.Signer
			for _, k := range keys {
				signers = append(signers, sign.Ed25519Signer{Key: k})
			}
			return sign.SignCommit(cmd.Context(), r, c, signers)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&signType, "sign-type", "s", "ed25519", "signature type (only ed25519)")
	f.StringVar(&keysFile, "keys-file", "", "read the keys from this file, one base64 key per line")
	f.BoolVar(&verify, "verify", false, "verify the commit's signatures instead of signing")
	return cmd
}

func runSignVerify(g *globalOptions, r *ostree.Repo, c ostree.Checksum, keys []string, keysFile string) error {
	v := &sign.Ed25519Verifier{}
	for _, s := range keys {
		k, err := sign.ParseEd25519PublicKey(s)
		if err != nil {
			return err
		}
		v.Trusted = append(v.Trusted, k)
	}
	if keysFile != "" {
		ks, err := sign.LoadEd25519KeyFile(keysFile)
		if err != nil {
			return err
		}
		v.Trusted = append(v.Trusted, ks...)
	}
	if len(v.Trusted) == 0 {
		v.Trusted, v.Revoked = sign.LoadEd25519TrustDirs(sign.DefaultEd25519TrustDirs)
	}
	b, err := r.ReadMetadataBytes(ostree.ObjectName{Checksum: c, Type: ostree.ObjCommit})
	if err != nil {
		return err
	}
	md, err := r.LoadCommitMeta(c)
	if err != nil {
		return fmt.Errorf("%w: %v", ostree.ErrNoSignature, err)
	}
	if err := v.Verify("commit "+c.String(), b, md); err != nil {
		if errors.Is(err, ostree.ErrNoSignature) || errors.Is(err, ostree.ErrBadSignature) {
			return exitError{code: 1, msg: err.Error()}
		}
		return err
	}
	fmt.Fprintf(g.stdout, "Verification OK: commit %s has a valid ed25519 signature\n", c)
	return nil
}
