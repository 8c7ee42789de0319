package osauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/gophercloud/gophercloud/v2"
)

// IsRetryable reports whether err, from a call through gophercloud or
// plain net/http, is a transient failure that the same request may not
// meet again: the service could not be reached (connection refused or
// reset, timeout, a response cut short) or answered 408, 429, 500, 502,
// 503 or 504, including when re-authenticating to Keystone failed that
// way. Wrong credentials, missing objects, refused requests, TLS
// certificate problems and a canceled context are permanent.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	var uep *gophercloud.ErrUnexpectedResponseCode
	switch {
	case errors.As(err, &ue):
		return retryableStatus(ue.Actual)
	case errors.As(err, &uep):
		return retryableStatus(uep.Actual)
	}
	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) { // it does not unwrap: look at why Keystone failed
		return IsRetryable(reauth.ErrReauth)
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) || errors.As(err, &record) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ue2 *url.Error
	if errors.As(err, &ue2) {
		// The server closed the connection without answering ("EOF"), or
		// another transport failure: the request did not complete.
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
