package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/gostree/gostree/ostree/sign"
)

// gpgKeyFlags locate OpenPGP secret keys: a key file, or a GnuPG home.
type gpgKeyFlags struct {
	homedir, keyFile, passFile string
}

func (k *gpgKeyFlags) addFlags(f *pflag.FlagSet) {
	f.StringVar(&k.homedir, "gpg-homedir", "", "GnuPG home directory holding the secret keys (default: $GNUPGHOME or ~/.gnupg)")
	f.StringVar(&k.keyFile, "gpg-key-file", "", "file with the OpenPGP secret key(s) (gpg --export-secret-keys, armored or binary; mode 0600)")
	f.StringVar(&k.passFile, "gpg-passphrase-file", "", "file whose first line is the passphrase of the secret key (mode 0600)")
}

// secretKeys loads the secret keys the flags point to.
func (k *gpgKeyFlags) secretKeys() (*sign.Keyring, error) {
	if k.keyFile != "" && k.homedir != "" {
		return nil, errUsage("give either --gpg-key-file or --gpg-homedir, not both")
	}
	if k.keyFile != "" {
		return sign.LoadSecretKeyFile(k.keyFile, k.passFile)
	}
	home := k.homedir
	if home == "" {
		home = os.Getenv("GNUPGHOME")
	}
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, errors.New("no GnuPG home: give --gpg-key-file or --gpg-homedir")
		}
		home = filepath.Join(h, ".gnupg")
	}
	var pass []byte
	if k.passFile != "" {
		p, err := sign.ReadSecretFile(k.passFile)
		if err != nil {
			return nil, err
		}
		pass = []byte(strings.TrimRight(strings.SplitN(string(p), "\n", 2)[0], "\r"))
	}
	return sign.LoadGnuPGHome(home, pass)
}

// signingFlags are the signing options of commit and summary -u.
type signingFlags struct {
	gpg      gpgKeyFlags
	gpgSign  []string
	sign     []string
	signType string
	keysFile string
}

func (s *signingFlags) addFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&s.gpgSign, "gpg-sign", nil, "KEY-ID: GPG-sign with this key (repeatable)")
	s.gpg.addFlags(f)
	f.StringArrayVar(&s.sign, "sign", nil, "KEY: sign with this secret key (base64, ed25519; repeatable)")
	f.StringVar(&s.signType, "sign-type", "ed25519", "signature type for --sign (only ed25519)")
	f.StringVar(&s.keysFile, "sign-from-file", "", "file of secret keys for --sign-type, one per line (mode 0600)")
}

func (s *signingFlags) requested() bool {
	return len(s.gpgSign) > 0 || len(s.sign) > 0 || s.keysFile != ""
}

// signers loads every requested key; it fails before anything is written
// when a key is missing, locked or malformed.
func (s *signingFlags) signers(now time.Time) ([]sign.Signer, error) {
	var out []sign.Signer
	if len(s.gpgSign) > 0 {
		kr, err := s.gpg.secretKeys()
		if err != nil {
			return nil, err
		}
		for _, id := range s.gpgSign {
			k, err := kr.SigningKey(id, now)
			if err != nil {
				return nil, err
			}
			out = append(out, sign.GPGSigner{Key: k, Options: sign.SignOptions{Time: now}})
		}
	}
	if len(s.sign) > 0 || s.keysFile != "" {
		eds, err := ed25519SecretKeys(s.signType, s.sign, s.keysFile)
		if err != nil {
			return nil, err
		}
		for _, k := range eds {
			out = append(out, sign.Ed25519Signer{Key: k})
		}
	}
	return out, nil
}

func checkSignType(t string) error {
	if t != "" && t != "ed25519" {
		return fmt.Errorf("signature type %q is not implemented (only ed25519)", t)
	}
	return nil
}

// ed25519SecretKeys parses secret keys given on the command line and in a
// keys file.
func ed25519SecretKeys(signType string, keys []string, keysFile string) ([]*sign.Ed25519SecretKey, error) {
	if err := checkSignType(signType); err != nil {
		return nil, err
	}
	var out []*sign.Ed25519SecretKey
	for i, s := range keys {
		k, err := sign.ParseEd25519SecretKey(s)
		if err != nil {
			return nil, fmt.Errorf("secret key #%d: %w", i+1, err)
		}
		out = append(out, k)
	}
	if keysFile != "" {
		ks, err := sign.LoadEd25519SecretKeyFile(keysFile)
		if err != nil {
			return nil, err
		}
		out = append(out, ks...)
	}
	if len(out) == 0 {
		return nil, errUsage("no secret key given")
	}
	return out, nil
}
