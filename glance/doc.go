// Package glance records OSTree commits as OpenStack Glance images and
// resolves images back to commits: Glance as the catalogue of published
// operating-system versions, the repository itself living in Swift or on
// any web server.
//
// An image published by gostree carries these string properties:
//
//	ostree_commit   the commit checksum (64 hex), the exact target
//	ostree_ref      the ref the commit was published on (optional)
//	ostree_version  the commit's version (optional)
//	ostree_osname   the OS name (stateroot), optional
//	ostree_repo     where to pull it from: swift://CONTAINER[/PREFIX] or
//	                an http(s):// URL of the repository
//
// and the tag "ostree". By default it holds no image data (a pointer
// image). With a payload (PublishOptions.Payload) the image data is a
// self-contained static delta to the commit, from scratch or from the
// commit in ostree_delta_from (ostree_payload=static-delta):
// DownloadPayload fetches it with byte-range resume and checks it against
// Glance's os_hash_value; ApplyPayload verifies the commit's signature
// (when given a verifier) and applies it in one transaction.
//
// Image properties are NOT a trust anchor: anyone who may edit the image
// can change them. They say which commit to fetch and from where; whether
// that commit is authentic is decided after the pull, by verifying the
// commit's signature (GPG or ed25519) against the keys configured for the
// remote on the host, as any ostree pull does. Pinning an exact commit
// also means a tampered repository can only fail the checksum checks, not
// substitute other content.
//
// Glance being unreachable or answering 408, 429 or 5xx is retried with
// jittered exponential backoff, a bounded number of times (Client.Retry),
// for every call that is safe to repeat; Publish is made safe to repeat
// by choosing the image ID itself (see Client). IsRetryable tells a
// caller whether a failure is worth trying again later. The package logs
// nothing.
package glance
