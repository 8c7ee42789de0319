package osauth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

func TestIsRetryable(t *testing.T) {
	status := func(code int) error {
		return gophercloud.ErrUnexpectedResponseCode{Method: "GET", URL: "http://x/", Actual: code}
	}
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "http://x/", Err: err} }
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: &net.OpError{Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"503", status(503), true},
		{"500", status(500), true},
		{"502 wrapped", fmt.Errorf("glance: %w", status(502)), true},
		{"504", status(504), true},
		{"429", status(429), true},
		{"408", status(408), true},
		{"501", status(501), false},
		{"401", status(401), false},
		{"403", status(403), false},
		{"404", status(404), false},
		{"409", status(409), false},
		{"connection refused", urlErr(dial), true},
		{"connection reset", urlErr(syscall.ECONNRESET), true},
		{"server closed the connection", urlErr(io.EOF), true},
		{"cut body", io.ErrUnexpectedEOF, true},
		{"unknown CA", urlErr(x509.UnknownAuthorityError{}), false},
		{"wrong host name", urlErr(x509.HostnameError{Host: "x"}), false},
		{"canceled", urlErr(context.Canceled), false},
		{"reauth: Keystone down", &gophercloud.ErrUnableToReauthenticate{ErrOriginal: status(401), ErrReauth: urlErr(dial)}, true},
		{"reauth: wrong password", &gophercloud.ErrUnableToReauthenticate{ErrOriginal: status(401), ErrReauth: status(401)}, false},
		{"plain error", errors.New("bad input"), false},
	} {
		if got := IsRetryable(tc.err); got != tc.want {
			t.Errorf("%s: IsRetryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
