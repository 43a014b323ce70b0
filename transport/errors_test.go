package transport

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProtocolErrorsAreTyped: answers the protocol does not allow are
// *Error values matching the sentinel of their status, with the problem
// in the text.
func TestProtocolErrorsAreTyped(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		header   http.Header
		call     func(r *Registry) error
		sentinel error
		suffix   string
	}{
		{"session without a Location", http.StatusAccepted, nil, func(r *Registry) error {
			_, _, err := r.startUpload(context.Background(), "a/b", "", "")
			return err
		}, ErrStatus, "202 Accepted without a Location: unexpected HTTP status"},
		{"401 without a usable challenge", http.StatusUnauthorized, http.Header{"Www-Authenticate": {"Negotiate"}}, func(r *Registry) error {
			_, err := r.GetManifest(context.Background(), "a/b", "v1", nil)
			return err
		}, ErrUnauthorized, "401 Unauthorized without a usable challenge: unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			tr, err := New(Options{NoRetries: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			err = tc.call(tr.Registry(strings.TrimPrefix(srv.URL, "http://"), RegistryOptions{Insecure: true}))
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tc.sentinel) || e.StatusCode != tc.status {
				t.Fatalf("error %v, want an *Error matching %v", err, tc.sentinel)
			}
			if !strings.HasSuffix(err.Error(), tc.suffix) {
				t.Errorf("error %q, want it to end with %q", err, tc.suffix)
			}
		})
	}
}
