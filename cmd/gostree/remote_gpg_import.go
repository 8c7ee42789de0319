package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/ostree/sign"
)

func newRemoteGPGImportCommand(g *globalOptions, rd *remotesDir) *cobra.Command {
	var keyrings []string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "gpg-import NAME [KEY-ID...]",
		Short: "Import GPG keys trusted for a remote (into REPO/NAME.trustedkeys.gpg)",
		Args:  cobra.MinimumNArgs(1),
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
			src := &sign.Keyring{}
			switch {
			case stdin && len(keyrings) > 0:
				return errUsage("give either --keyring or --stdin, not both")
			case stdin:
				b, err := io.ReadAll(io.LimitReader(os.Stdin, sign.MaxKeyringSize+1))
				if err != nil {
					return err
				}
				kr, err := sign.ParseKeyring(b)
				if err != nil {
					return fmt.Errorf("standard input: %w", err)
				}
				src.Merge(kr)
			case len(keyrings) > 0:
				for _, p := range keyrings {
					kr, err := sign.LoadKeyringFile(p)
					if err != nil {
						return err
					}
					src.Merge(kr)
				}
			default:
				home := os.Getenv("GNUPGHOME")
				if home == "" {
					h, err := os.UserHomeDir()
					if err != nil {
						return errUsage("give --keyring=FILE or --stdin")
					}
					home = filepath.Join(h, ".gnupg")
				}
				kr, err := sign.LoadGnuPGHome(home, nil)
				if err != nil {
					return fmt.Errorf("%w (or give --keyring=FILE or --stdin)", err)
				}
				src.Merge(kr)
			}
			if len(args) > 1 {
				if src, err = src.Select(args[1:]); err != nil {
					return err
				}
			}
			if src.Len() == 0 {
				return errors.New("no GPG keys to import")
			}
			dir := r.Path()
			if rm.File != "" {
				dir = filepath.Dir(rm.File)
			}
			target := filepath.Join(dir, rm.Name+".trustedkeys.gpg")
			merged := &sign.Keyring{}
			old, err := sign.LoadKeyringFile(target)
			switch {
			case err == nil:
				merged.Merge(old)
			case !errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("existing keyring: %w", err)
			}
			merged.Merge(src)
			var buf bytes.Buffer
			if err := merged.Serialize(&buf); err != nil {
				return err
			}
			// Public keys only: readable by all, like ostree's keyring.
			if err := atomicfile.WriteFile(target, buf.Bytes(), 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", target, err)
			}
			fmt.Fprintf(g.stdout, "Imported %d GPG key%s to remote %q\n", src.Len(), gpgImportPlural(src.Len()), rm.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&keyrings, "keyring", "k", nil, "import keys from this keyring file (binary or armored; repeatable)")
	f.BoolVar(&stdin, "stdin", false, "import keys from standard input")
	return cmd
}

func gpgImportPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
