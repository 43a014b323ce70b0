package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestUploadToAServerThatStopsReading: a request body the server stops
// taking fails with ErrStalled after the stall timeout, over HTTP/1.1 and
// HTTP/2, instead of blocking for ever (the handler answers after 20 s
// if nothing happened, which a client without the timeout would wait for).
func TestUploadToAServerThatStopsReading(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "h2"}[h2], func(t *testing.T) {
			stop := make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.CopyN(io.Discard, r.Body, 1<<20) // take a little, then nothing
				hold := time.NewTimer(20 * time.Second)
				defer hold.Stop()
				select {
				case <-r.Context().Done():
				case <-stop:
				case <-hold.C:
				}
			}))
			srv.EnableHTTP2 = h2
			srv.StartTLS()
			defer srv.Close()
			pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			tr, err := New(Options{RootCAs: pool, NoRetries: true, StallTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			reg := tr.Registry(strings.TrimPrefix(srv.URL, "https://"), RegistryOptions{})
			const size = 1 << 30 // far more than any socket buffer
			_, err = reg.Do(context.Background(), Request{
				Method: http.MethodPut, URL: reg.URL("/v2/a/blobs/uploads/x"), ContentLength: size, Bulk: !h2,
				Body: retryablehttp.ReaderFunc(func() (io.Reader, error) { return io.LimitReader(zeros{}, size), nil }),
			})
			if !errors.Is(err, ErrStalled) {
				t.Fatalf("got %v, want ErrStalled", err)
			}
			t.Logf("error as reported: %v", err)
			close(stop) // an HTTP/1.1 server cannot see the client go while the body is unread
		})
	}
}
