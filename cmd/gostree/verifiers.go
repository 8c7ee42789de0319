package main

import (
	"path/filepath"

	"github.com/gostree/gostree/ostree"
	"github.com/gostree/gostree/ostree/sign"
)

// remoteVerifiers returns the commit and summary signature verifiers for a
// remote (its keyrings and ed25519 keys), built by package ostree/sign
// from the remote's configuration: REPO/NAME.trustedkeys.gpg (or the one
// next to the remote's remotes.d file), gpgkeypath, the global
// /usr/share/ostree/trusted.gpg.d, verification-ed25519-key/-file and the
// system ed25519 trust stores. Configuration errors (unreadable key files,
// unknown signature types) are returned here, before anything is fetched.
func remoteVerifiers(r *ostree.Repo, rm *ostree.Remote) (ostree.CommitVerifier, ostree.SummaryVerifier, error) {
	dir := r.DefaultRemotesDir()
	if rm.File != "" {
		dir = filepath.Dir(rm.File)
	}
	v, err := sign.NewRemoteVerifier(r.Path(), rm.Name, rm, sign.VerifierOptions{RemotesDir: dir})
	if err != nil {
		return nil, nil, err
	}
	return v, v, nil
}
