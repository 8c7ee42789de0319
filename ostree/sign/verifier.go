package sign

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gostree/gostree/ostree"
)

// Default locations of system-wide trust stores.
const (
	// DefaultGlobalGPGDir holds keyrings (*.gpg) trusted for every remote
	// that has neither its own keyring nor gpgkeypath.
	DefaultGlobalGPGDir = "/usr/share/ostree/trusted.gpg.d"
)

// DefaultEd25519TrustDirs are the base directories of trusted.ed25519(.d)
// and revoked.ed25519(.d), in ostree's order.
var DefaultEd25519TrustDirs = []string{"/etc/ostree", "/usr/share/ostree"}

// RemoteConfig is the part of a remote's configuration the verifier reads
// (*ostree.Remote implements it).
type RemoteConfig interface {
	Get(key string) (string, bool)
}

// VerifierOptions locate trust stores; the zero value means the system
// defaults.
type VerifierOptions struct {
	// RemotesDir is the remotes.d directory, searched for
	// REMOTE.trustedkeys.gpg after the repository ("" for none).
	RemotesDir string
	// GlobalGPGDir replaces DefaultGlobalGPGDir ("-" disables it).
	GlobalGPGDir string
	// Ed25519TrustDirs replaces DefaultEd25519TrustDirs.
	Ed25519TrustDirs []string
	// Now is the time key and signature expiry are judged at.
	Now func() time.Time
}

// RemoteVerifier checks commits and summaries pulled from one remote as
// its configuration asks. It implements ostree.CommitVerifier and
// ostree.SummaryVerifier; with verification disabled in the config its
// methods accept anything.
type RemoteVerifier struct {
	Remote string
	// What the configuration asks for.
	GPGVerify, GPGVerifySummary   bool
	SignVerify, SignVerifySummary bool

	gpg                 *GPGVerifier
	gpgSources          []string
	edCommit, edSummary *edSetup
}

// edSetup is the ed25519 part of sign-verify or sign-verify-summary.
type edSetup struct {
	keys       []Ed25519PublicKey // explicit keys (verification-ed25519-*)
	systemDirs []string           // when no explicit keys: trust dirs
}

var (
	_ ostree.CommitVerifier  = (*RemoteVerifier)(nil)
	_ ostree.SummaryVerifier = (*RemoteVerifier)(nil)
)

// parseKeyfileBool parses a GKeyFile boolean.
func parseKeyfileBool(cfg RemoteConfig, key string, def bool) (bool, error) {
	v, ok := cfg.Get(key)
	if !ok {
		return def, nil
	}
	switch strings.TrimSpace(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("remote option %s: invalid boolean %q", key, v)
}

func splitPaths(v string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(v, func(c rune) bool { return c == ';' || c == ',' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// signTypes interprets sign-verify / sign-verify-summary: "" or false →
// off; true → every supported type, keys optional; a list → those types,
// keys required.
func signTypes(cfg RemoteConfig, key string) (on, explicit bool, err error) {
	v, ok := cfg.Get(key)
	v = strings.TrimSpace(v)
	if !ok || v == "" || v == "false" || v == "0" {
		return false, false, nil
	}
	if v == "true" || v == "1" {
		return true, false, nil
	}
	for _, t := range splitPaths(v) {
		if t != "ed25519" {
			return false, false, fmt.Errorf("remote option %s: signature type %q is not implemented (only ed25519)", key, t)
		}
	}
	return true, true, nil
}

// NewRemoteVerifier builds the verifier of remote name of the repository
// at repoPath from its configuration cfg: gpg-verify (default true),
// gpg-verify-summary, sign-verify, sign-verify-summary, gpgkeypath,
// verification-ed25519-key and verification-ed25519-file. Keyrings are
// read now: REPO/NAME.trustedkeys.gpg (else RemotesDir/NAME.trustedkeys.gpg),
// plus gpgkeypath files and directories; only when neither exists the
// global keyring directory. Unreadable configured key files are errors.
func NewRemoteVerifier(repoPath, name string, cfg RemoteConfig, o VerifierOptions) (*RemoteVerifier, error) {
	v := &RemoteVerifier{Remote: name}
	var err error
	if v.GPGVerify, err = parseKeyfileBool(cfg, "gpg-verify", true); err != nil {
		return nil, err
	}
	if v.GPGVerifySummary, err = parseKeyfileBool(cfg, "gpg-verify-summary", false); err != nil {
		return nil, err
	}
	if v.GPGVerify || v.GPGVerifySummary {
		kr, sources, err := remoteKeyring(repoPath, name, cfg, o)
		if err != nil {
			return nil, fmt.Errorf("remote %q: %w", name, err)
		}
		v.gpg = &GPGVerifier{Keyring: kr, Now: o.Now}
		v.gpgSources = sources
	}
	on, explicit, err := signTypes(cfg, "sign-verify")
	if err != nil {
		return nil, err
	}
	if on {
		v.SignVerify = true
		if v.edCommit, err = ed25519Setup(cfg, explicit, o); err != nil {
			return nil, fmt.Errorf("remote %q: %w", name, err)
		}
	}
	on, explicit, err = signTypes(cfg, "sign-verify-summary")
	if err != nil {
		return nil, err
	}
	if on {
		v.SignVerifySummary = true
		if v.edSummary, err = ed25519Setup(cfg, explicit, o); err != nil {
			return nil, fmt.Errorf("remote %q: %w", name, err)
		}
	}
	return v, nil
}

func remoteKeyring(repoPath, name string, cfg RemoteConfig, o VerifierOptions) (*Keyring, []string, error) {
	kr := &Keyring{}
	var sources []string
	own := false
	candidates := []string{filepath.Join(repoPath, name+".trustedkeys.gpg")}
	if o.RemotesDir != "" {
		candidates = append(candidates, filepath.Join(o.RemotesDir, name+".trustedkeys.gpg"))
	}
	for _, p := range candidates {
		k, err := LoadKeyringFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		kr.Merge(k)
		sources = append(sources, p)
		own = true
		break
	}
	if v, ok := cfg.Get("gpgkeypath"); ok && strings.TrimSpace(v) != "" {
		for _, p := range splitPaths(v) {
			st, err := os.Stat(p)
			if err != nil {
				return nil, nil, fmt.Errorf("gpgkeypath: %w", err)
			}
			var k *Keyring
			if st.IsDir() {
				k, err = loadKeyringDir(p, "")
			} else {
				k, err = LoadKeyringFile(p)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("gpgkeypath: %w", err)
			}
			kr.Merge(k)
			sources = append(sources, p)
		}
		own = true
	}
	if !own {
		dir := o.GlobalGPGDir
		if dir == "" {
			dir = DefaultGlobalGPGDir
		}
		if dir != "-" {
			k, err := loadKeyringDir(dir, ".gpg")
			if err != nil {
				return nil, nil, err
			}
			kr.Merge(k)
			sources = append(sources, dir)
		}
	}
	return kr, sources, nil
}

func ed25519Setup(cfg RemoteConfig, explicit bool, o VerifierOptions) (*edSetup, error) {
	s := &edSetup{}
	file, hasFile := cfg.Get("verification-ed25519-file")
	key, hasKey := cfg.Get("verification-ed25519-key")
	if hasFile && strings.TrimSpace(file) != "" {
		keys, err := LoadEd25519KeyFile(strings.TrimSpace(file))
		if err != nil {
			return nil, fmt.Errorf("failed loading 'ed25519' keys from %q: %w", file, err)
		}
		s.keys = append(s.keys, keys...)
	}
	if hasKey && strings.TrimSpace(key) != "" {
		k, err := ParseEd25519PublicKey(key)
		if err != nil {
			return nil, fmt.Errorf("failed loading 'ed25519' keys from inline verification-ed25519-key: %w", err)
		}
		s.keys = append(s.keys, k)
	}
	if len(s.keys) == 0 {
		if explicit {
			return nil, errors.New("no keys found for required signapi type ed25519 (set verification-ed25519-key or verification-ed25519-file)")
		}
		s.systemDirs = o.Ed25519TrustDirs
		if s.systemDirs == nil {
			s.systemDirs = DefaultEd25519TrustDirs
		}
	}
	return s, nil
}

func (s *edSetup) verifier() *Ed25519Verifier {
	if s == nil { // sign-verify switched on after construction: system stores
		s = &edSetup{systemDirs: DefaultEd25519TrustDirs}
	}
	if len(s.keys) > 0 {
		return &Ed25519Verifier{Trusted: s.keys}
	}
	t, r := LoadEd25519TrustDirs(s.systemDirs)
	return &Ed25519Verifier{Trusted: t, Revoked: r}
}

// gpgVerifier is never nil: GPG verification switched on after
// construction has no trusted key.
func (v *RemoteVerifier) gpgVerifier() *GPGVerifier {
	if v.gpg == nil {
		return &GPGVerifier{Keyring: &Keyring{}}
	}
	return v.gpg
}

// GPGKeyring returns the keyring used for GPG verification (nil when GPG
// verification is off) and the files and directories it was read from.
func (v *RemoteVerifier) GPGKeyring() (*Keyring, []string) {
	if v.gpg == nil {
		return nil, nil
	}
	return v.gpg.Keyring, v.gpgSources
}

// CommitSignaturesRequired reports whether VerifyCommit checks anything
// (and so whether a commit's detached metadata must be fetched).
func (v *RemoteVerifier) CommitSignaturesRequired() bool { return v.GPGVerify || v.SignVerify }

// SummarySignaturesRequired reports whether VerifySummary checks anything
// (and so whether summary.sig must exist).
func (v *RemoteVerifier) SummarySignaturesRequired() bool {
	return v.GPGVerifySummary || v.SignVerifySummary
}

// VerifyCommit checks the signatures of a commit as the remote's
// configuration asks: with gpg-verify, a valid trusted OpenPGP signature;
// with sign-verify, a valid ed25519 signature; both when both are on.
// commitBytes must hash to c.
func (v *RemoteVerifier) VerifyCommit(ctx context.Context, c ostree.Checksum, commitBytes []byte, detached ostree.Metadata) error {
	if !v.CommitSignaturesRequired() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	what := "commit " + c.String()
	if len(commitBytes) > ostree.MaxMetadataSize {
		return fmt.Errorf("%s: %w: commit of %d bytes exceeds the metadata size limit", what, ostree.ErrBadSignature, len(commitBytes))
	}
	if ostree.SumBytes(commitBytes) != c {
		return fmt.Errorf("%s: %w: the commit bytes do not match the checksum", what, ostree.ErrBadSignature)
	}
	if v.GPGVerify {
		res := v.gpgVerifier().CheckSignatures(commitBytes, gpgSignatures(detached))
		if err := gpgError(what, " (use gpg-verify=false in remote config to disable)", res); err != nil {
			return err
		}
	}
	if v.SignVerify {
		if err := v.edCommit.verifier().Verify(what, commitBytes, detached); err != nil {
			return err
		}
	}
	return nil
}

// VerifySummary checks summary.sig (decoded; see DecodeDetached) against
// the exact summary bytes when gpg-verify-summary or sign-verify-summary
// is on.
func (v *RemoteVerifier) VerifySummary(ctx context.Context, summary []byte, sig ostree.Metadata) error {
	if !v.SummarySignaturesRequired() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	const what = "summary"
	if v.GPGVerifySummary {
		res := v.gpgVerifier().CheckSignatures(summary, gpgSignatures(sig))
		if err := gpgError(what, " (use gpg-verify-summary=false in remote config to disable)", res); err != nil {
			return err
		}
	}
	if v.SignVerifySummary {
		if err := v.edSummary.verifier().Verify(what, summary, sig); err != nil {
			return err
		}
	}
	return nil
}

// VerifySummaryBytes is VerifySummary for the raw summary.sig file (nil
// when the server has none): garbage is reported as no signature.
func (v *RemoteVerifier) VerifySummaryBytes(ctx context.Context, summary, sigFile []byte) error {
	if !v.SummarySignaturesRequired() {
		return nil
	}
	if sigFile == nil {
		return fmt.Errorf("summary: %w: the remote has no summary.sig", ostree.ErrNoSignature)
	}
	m, err := DecodeDetached(sigFile)
	if err != nil {
		return fmt.Errorf("summary.sig: %w", err)
	}
	return v.VerifySummary(ctx, summary, m)
}

// VerifyCommitBytes is VerifyCommit for the raw .commitmeta (nil when the
// commit has none): garbage is reported as no signature.
func (v *RemoteVerifier) VerifyCommitBytes(ctx context.Context, c ostree.Checksum, commitBytes, commitMeta []byte) error {
	if !v.CommitSignaturesRequired() {
		return nil
	}
	var m ostree.Metadata
	if commitMeta != nil {
		var err error
		if m, err = DecodeDetached(commitMeta); err != nil {
			return fmt.Errorf("commit %s: %w", c, err)
		}
	}
	return v.VerifyCommit(ctx, c, commitBytes, m)
}
