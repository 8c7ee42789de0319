// Package store is the byte transport under a pull: it reads the files of
// a repository (summary, config, refs, objects, deltas) by their relative
// slash-separated path and knows nothing of what they contain. Everything
// it returns is untrusted; package ostree verifies every byte.
//
// Implementations: store/local (a directory) and store/httpstore (a
// static web server, HTTP or HTTPS, with retries and resumable
// transfers). All of them pass the conformance suite in store/storetest.
//
// Errors: a missing file gives an error for which errors.Is(err,
// fs.ErrNotExist) holds; every other failure is an *Error whose
// Retryable field says whether trying again may help (IsRetryable).
package store
