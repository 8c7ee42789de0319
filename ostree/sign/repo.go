package sign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gostree/gostree/internal/atomicfile"
	"github.com/gostree/gostree/ostree"
)

// Signer makes one kind of signature over raw bytes.
type Signer interface {
	// MetadataKey is the detached-metadata key the signature goes under.
	MetadataKey() string
	// Sign returns the signature of data.
	Sign(data []byte) ([]byte, error)
	// Name identifies the key in messages (fingerprint or public key).
	Name() string
}

// GPGSigner signs with an OpenPGP key.
type GPGSigner struct {
	Key     *SigningKey
	Options SignOptions
}

// MetadataKey implements Signer.
func (s GPGSigner) MetadataKey() string { return GPGSigsKey }

// Sign implements Signer.
func (s GPGSigner) Sign(data []byte) ([]byte, error) { return s.Key.Sign(data, s.Options) }

// Name implements Signer.
func (s GPGSigner) Name() string { return s.Key.Fingerprint() }

// Ed25519Signer signs with an ed25519 key.
type Ed25519Signer struct{ Key *Ed25519SecretKey }

// MetadataKey implements Signer.
func (s Ed25519Signer) MetadataKey() string { return Ed25519SigsKey }

// Sign implements Signer.
func (s Ed25519Signer) Sign(data []byte) ([]byte, error) { return s.Key.Sign(data), nil }

// Name implements Signer.
func (s Ed25519Signer) Name() string { return s.Key.Public().String() }

// addSignatures appends one signature per signer to m. A GPG key that
// already signed is an error, as in ostree; an identical ed25519
// signature is not added twice.
func addSignatures(what string, m ostree.Metadata, data []byte, signers []Signer) (ostree.Metadata, error) {
	for _, s := range signers {
		if g, ok := s.(GPGSigner); ok {
			if sigsIssuedBy(gpgSignatures(m), g.Key.Fingerprint()) {
				return nil, fmt.Errorf("%s is already signed with GPG key %s", what, g.Key.Fingerprint())
			}
		}
		sig, err := s.Sign(data)
		if err != nil {
			return nil, err
		}
		dup := false
		for _, old := range aayValue(m, s.MetadataKey()) {
			if bytes.Equal(old, sig) {
				dup = true
			}
		}
		if !dup {
			m = withAppended(m, s.MetadataKey(), sig)
		}
	}
	return m, nil
}

func sigsIssuedBy(sigs [][]byte, fp string) bool {
	for _, s := range sigs {
		if sigIssuedBy(s, []string{fp}) {
			return true
		}
	}
	return false
}

// SignCommit adds signatures of commit c (over its exact .commit bytes) to
// its detached metadata, keeping what is there, through a transaction.
func SignCommit(ctx context.Context, r *ostree.Repo, c ostree.Checksum, signers []Signer) error {
	b, err := r.ReadMetadataBytes(ostree.ObjectName{Checksum: c, Type: ostree.ObjCommit})
	if err != nil {
		return err
	}
	if ostree.SumBytes(b) != c {
		return fmt.Errorf("commit %s: %w: its bytes do not match its checksum", c, ostree.ErrCorrupt)
	}
	md, err := r.LoadCommitMeta(c)
	if err != nil {
		return err
	}
	md, err = addSignatures("commit "+c.String(), md, b, signers)
	if err != nil {
		return err
	}
	return writeCommitMeta(ctx, r, c, md)
}

func writeCommitMeta(ctx context.Context, r *ostree.Repo, c ostree.Checksum, md ostree.Metadata) error {
	tx, err := r.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Abort()
	if err := tx.WriteCommitMeta(c, md); err != nil {
		return err
	}
	return tx.Commit()
}

// DeleteCommitGPGSignatures removes the OpenPGP signatures of commit c
// made by any of keyIDs and returns how many were removed.
func DeleteCommitGPGSignatures(ctx context.Context, r *ostree.Repo, c ostree.Checksum, keyIDs []string) (int, error) {
	if _, err := r.ReadMetadataBytes(ostree.ObjectName{Checksum: c, Type: ostree.ObjCommit}); err != nil {
		return 0, err
	}
	md, err := r.LoadCommitMeta(c)
	if err != nil {
		return 0, err
	}
	md, n := WithoutGPGSignaturesBy(md, keyIDs)
	if n == 0 {
		return 0, nil
	}
	return n, writeCommitMeta(ctx, r, c, md)
}

// SignSummary adds signatures of the repository's summary file to
// summary.sig (created, or extended when it exists), written atomically.
func SignSummary(ctx context.Context, r *ostree.Repo, signers []Signer) error {
	unlock, err := r.Lock(ctx, ostree.LockShared)
	if err != nil {
		return err
	}
	defer unlock()
	summary, err := os.ReadFile(filepath.Join(r.Path(), "summary"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("the repository has no summary file: run `summary -u` first")
		}
		return err
	}
	sigPath := filepath.Join(r.Path(), "summary.sig")
	var md ostree.Metadata
	if old, err := os.ReadFile(sigPath); err == nil {
		if md, err = ostree.DecodeMetadata(old); err != nil {
			return fmt.Errorf("existing summary.sig is corrupt (remove it or run `summary -u`): %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	md, err = addSignatures("summary", md, summary, signers)
	if err != nil {
		return err
	}
	b, err := ostree.EncodeMetadata(md)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(sigPath, b, 0o644); err != nil {
		return fmt.Errorf("writing summary.sig: %w", err)
	}
	return nil
}
