package httpstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gostree/gostree/ostree/store"
)

func TestUnauthorizedSaysWhy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	}))
	defer srv.Close()
	s, err := New(srv.URL+"/v1/AUTH_x/c?temp_url_sig=x&temp_url_expires=1", Options{Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Open(context.Background(), "config")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "expired") || store.IsRetryable(err) {
		t.Fatalf("401: %v (retryable %v)", err, store.IsRetryable(err))
	}
	if strings.Contains(err.Error(), "temp_url_sig=x") {
		t.Fatalf("signature in the error: %v", err)
	}
}
