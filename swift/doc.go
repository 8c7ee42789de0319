// Package swift publishes OSTree repositories to OpenStack Swift and reads
// them back.
//
// A repository in a container (optionally under a prefix) is laid out
// exactly like an archive repository on a web server: config, summary
// (+ .sig), refs/heads/..., objects/xx/....{commit,commitmeta,dirtree,
// dirmeta,filez} and deltas/.... So it can be read in three ways:
//
//   - Store, with a Keystone token (gophercloud's object-storage client);
//   - TempURLStore, with per-request TempURLs signed with the account's or
//     container's Temp-URL-Key (sha256 or sha512, never sha1), or any
//     HTTP store given a prefix TempURL (Signer.PrefixURL) as base URL;
//   - anonymously over plain HTTP when the container is public
//     (Store.SetPublic, ACL ".r:*,.rlistings"), which stock `ostree pull`
//     uses like any other HTTP remote.
//
// WriteStore extends the read seam of package store (Open, Stat) with
// Put, List and Remove. Push uploads what a container lacks (objects,
// commits last, then deltas, config, refs and the summary last, so a
// client never sees a ref whose objects are missing) and is resumable by
// running it again; Prune deletes objects that nothing references, sparing
// recent ones a concurrent push may still need. Both respect the
// cluster's /info limits (GetLimits): Push checks every file's size
// against max_file_size and every name against max_object_name_length
// before it uploads anything, and refuses the push when one does not fit.
// Files are never split into static large objects: an ostree object or
// delta file above max_file_size (5 GiB by default) is an extreme case
// (delta parts are bounded by --max-chunk-size), and an SLO's ETag is not
// its content's MD5, which is how Store verifies every read.
//
// Transient failures (Swift or Keystone unreachable, connections reset,
// HTTP 408, 429, 5xx) are retried with jittered exponential backoff a
// bounded number of times, for every request that is safe to repeat (see
// Store); errors wrap the last failure and say when the retries were used
// up. The package logs nothing.
//
// Nothing read from Swift is trusted: Store checks length and ETag (MD5)
// while streaming, and ostree verifies every object's checksum and the
// commit signatures on pull.
package swift
