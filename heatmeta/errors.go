package heatmeta

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrNotModified is returned by Source.Fetch when the metadata has not
// changed since the previous successful Fetch of the same Source value
// (an HTTP 304 to a conditional GET). The caller keeps using the copy it
// already has.
var ErrNotModified = errors.New("metadata not modified")

// ErrNotConfigured is wrapped by the error of a source that lacks the
// settings it needs (no URL, no credentials). It is permanent until the
// configuration changes, as os-collect-config's SourceNotConfigured.
var ErrNotConfigured = errors.New("source not configured")

// Error is a failed fetch or signal, sorted into retryable or permanent.
// Its message never holds a signal URL's query, a password or a token.
type Error struct {
	Op     string // "fetch heat", "signal TEMP_URL_SIGNAL", ...
	Status int    // HTTP status, 0 when there was no response
	// Retryable says the same request may succeed later (connection
	// refused or reset, timeout, HTTP 5xx/408/429).
	Retryable bool
	Err       error
}

func (e *Error) Error() string {
	s := e.Op
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is a transient failure worth retrying
// with backoff. Errors that are not *Error (bad input, bad configuration)
// are permanent.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// retryableStatus sorts HTTP status codes.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// retryableNetError sorts transport errors: certificate and protocol
// errors are permanent, the rest (refused, reset, timeout, early EOF) may
// go away.
func retryableNetError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &invalid), errors.As(err, &recErr):
		return false
	case errors.As(err, &dnsErr):
		return !dnsErr.IsNotFound
	case errors.Is(err, context.Canceled):
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "unsupported protocol scheme") {
		return false
	}
	return true
}

// RedactURL returns u without its query, fragment and user info: a Swift
// TempURL's signature, a CFN presigned URL's Signature and AWSAccessKeyId
// all live in the query.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "<redacted URL>"
	}
	r := p.Scheme + "://" + p.Host + p.EscapedPath()
	if p.RawQuery != "" || p.User != nil {
		r += "?<redacted>"
	}
	return r
}

// sanitize strips secrets from a transport error: *url.Error carries the
// full request URL (with a TempURL signature); it is rebuilt with the
// redacted URL so nothing in the chain holds the secret. Any of the given
// secret strings still present in the message are replaced too.
func sanitize(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	msg := err.Error()
	dirty := false
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "<redacted>")
			dirty = true
		}
	}
	if dirty {
		return &redactedError{msg: msg, retryable: retryableNetError(err), canceled: errors.Is(err, context.Canceled), deadline: errors.Is(err, context.DeadlineExceeded)}
	}
	return err
}

// redactedError replaces an error whose message held a secret; it keeps
// only the context classification of the original.
type redactedError struct {
	msg                string
	retryable          bool
	canceled, deadline bool
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool {
	return (target == context.Canceled && e.canceled) || (target == context.DeadlineExceeded && e.deadline)
}

// httpError builds the *Error for a transport failure.
func httpError(op string, err error, secrets ...string) error {
	return &Error{Op: op, Retryable: retryableNetError(err) && !errors.Is(err, context.Canceled), Err: sanitize(err, secrets...)}
}

// statusErr builds the *Error for an unexpected HTTP status.
func statusErr(op string, code int) error {
	return &Error{Op: op, Status: code, Retryable: retryableStatus(code)}
}
