package ostree

import (
	"context"
	"errors"
)

// Signature errors. Verifiers wrap one of these so callers can tell "not
// signed" from "signed, but not by anyone we trust or not matching".
var (
	// ErrNoSignature: the object carries no signature of the required kind.
	ErrNoSignature = errors.New("no signatures found")
	// ErrBadSignature: no signature verified (bad data, unknown, expired
	// or revoked key).
	ErrBadSignature = errors.New("signature verification failed")
)

// CommitVerifier checks the signatures of a commit. commit is the raw
// .commit object (the bytes signatures cover) and detached its detached
// metadata (nil when the commit has none). It returns nil only if at
// least one signature is valid and trusted.
type CommitVerifier interface {
	VerifyCommit(ctx context.Context, commit Checksum, commitBytes []byte, detached Metadata) error
}

// SummaryVerifier checks summary.sig (an a{sv} like detached metadata)
// against the exact summary bytes.
type SummaryVerifier interface {
	VerifySummary(ctx context.Context, summary []byte, sig Metadata) error
}
