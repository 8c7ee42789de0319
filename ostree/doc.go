// Package ostree implements OSTree repositories in pure Go, byte-compatible
// with libostree 2022.7: the same tree and metadata give the same commit
// checksum, and each tool reads the other's repositories.
//
// Terms:
//
//   - An object is content-addressed by a Checksum (SHA-256). Metadata
//     objects (commit, dirtree, dirmeta) are GVariant data hashed as
//     stored; content objects ("file") are regular files or symlinks,
//     hashed over a header (uid, gid, mode, symlink target, xattrs)
//     followed by the content, whatever the storage mode.
//   - A Repo stores objects in one of four modes: archive (compressed
//     .filez objects, servable over HTTP), bare (real files with real
//     owners; needs root), bare-user (real files, metadata in the
//     user.ostreemeta xattr) and bare-user-only (no ownership at all).
//   - Writes go through a Txn: objects are staged in a private directory,
//     synced, and renamed into objects/ on Commit; refs are published
//     last. A crash leaves either the old repository or the new one.
//   - A static delta (deltas/…: a superblock and parts) carries the
//     objects a client lacks to go from one commit to another, or from
//     nothing; Txn.ApplyStaticDelta verifies and applies one through a
//     fetch function, Repo.GenerateStaticDelta writes one.
//   - Every object read from disk is verified before use; decoders
//     reject anything that is not GVariant normal form or breaks OSTree's
//     rules (names, sort order, checksum lengths, modes), returning errors
//     that wrap ErrCorrupt.
//
// The package logs nothing; commands decide what to print.
package ostree
