package transport

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

func TestReadLimited(t *testing.T) {
	for _, tc := range []struct {
		n, limit int
		tooLarge bool
	}{{0, 0, false}, {10, 10, false}, {11, 10, true}, {1 << 20, 10, true}} {
		b, err := ReadLimited(bytes.NewReader(make([]byte, tc.n)), int64(tc.limit))
		if tc.tooLarge != errors.Is(err, ErrTooLarge) || (!tc.tooLarge && len(b) != tc.n) {
			t.Errorf("ReadLimited(%d bytes, %d) = %d bytes, %v", tc.n, tc.limit, len(b), err)
		}
	}
}

// TestQuayPageLimit: an endless Quay API page fails with ErrTooLarge after
// MaxManifest bytes; the server is not left sending the rest.
func TestQuayPageLimit(t *testing.T) {
	const endless = 48 << 20
	in := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.Endless, Body: []byte(`{"repositories":[`), Limit: endless, Times: -1})
	srv := httptest.NewServer(in.Wrap(http.NotFoundHandler()))
	defer srv.Close()
	tr, err := New(Options{NoRetries: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	q := tr.Quay(strings.TrimPrefix(srv.URL, "http://"), QuayOptions{Insecure: true})
	_, err = q.Repositories(context.Background(), "ns", false, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
	if sent := in.Sent(); sent > 40<<20 {
		t.Errorf("the server sent %d MiB of an endless page", sent>>20)
	}
}
