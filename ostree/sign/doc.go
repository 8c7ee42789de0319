// Package sign verifies and makes the signatures OSTree keeps next to
// commits and summaries, in pure Go and byte-compatible with ostree 2022.7.
//
// Two schemes are supported, each stored as an "aay" entry of an a{sv}
// dictionary: the commit's detached metadata (.commitmeta) for commits, the
// summary.sig file for summaries.
//
//   - GPG ("ostree.gpgsigs"): every element is one binary detached OpenPGP
//     signature over the exact bytes of the .commit object or of the summary
//     file. Keyrings are kept as ostree keeps them: REPO/REMOTE.trustedkeys.gpg
//     (written by `remote gpg-import`), the files named by the remote's
//     gpgkeypath option, and only when neither exists the global
//     /usr/share/ostree/trusted.gpg.d/*.gpg. A signature counts only when it
//     is cryptographically good, made by a key in those keyrings, and — as
//     GnuPG decides it for ostree — neither the key (primary or signing
//     subkey) is revoked or expired now, nor the signature itself expired.
//     Signing produces the same packet GnuPG 2.2 writes (old-format header,
//     hashed issuer fingerprint and creation time, unhashed issuer key ID,
//     SHA-256), so re-signing with the same EdDSA key and time reproduces
//     ostree's bytes exactly.
//   - ed25519 ("ostree.sign.ed25519", `ostree sign`): every element is a
//     64-byte RFC 8032 signature. Public keys are base64 of 32 bytes, secret
//     keys base64 of the 64-byte seed‖public key; key files hold one base64
//     key per line. Revoked keys (revoked.ed25519 files) are never accepted.
//
// The errors returned when verification fails wrap ostree.ErrNoSignature
// (nothing of the required kind was there) or ostree.ErrBadSignature
// (signatures were there but none is valid and trusted).
//
// RemoteVerifier implements ostree.CommitVerifier and ostree.SummaryVerifier
// from a remote's configuration (gpg-verify, gpg-verify-summary, sign-verify,
// sign-verify-summary, gpgkeypath, verification-ed25519-key/-file).
//
// The package logs nothing and never includes secret key material in
// errors.
package sign
