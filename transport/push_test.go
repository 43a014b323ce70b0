package transport

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
)

func TestRangeEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0-99", 100, true},
		{"bytes=0-99", 100, true},
		{" 0-0 ", 1, true},
		{"", 0, false},
		{"0-", 0, false},
		{"0-x", 0, false},
		{"0--5", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := rangeEnd(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("rangeEnd(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestUploadWithDigest(t *testing.T) {
	tests := []struct{ loc, want string }{
		{"https://r.example/v2/a/blobs/uploads/u?_state=s", "https://r.example/v2/a/blobs/uploads/u?_state=s&digest=sha256%3Aab"},
		{"https://r.example/v2/a/blobs/uploads/u", "https://r.example/v2/a/blobs/uploads/u?digest=sha256%3Aab"},
	}
	for _, tc := range tests {
		up := &Upload{loc: tc.loc}
		got, err := up.withDigest("sha256:ab")
		if err != nil || got != tc.want {
			t.Errorf("withDigest(%s) = %s, %v; want %s", tc.loc, got, err, tc.want)
		}
	}
}

// TestBulkUploadsOverHTTP1: a session starts on the host's HTTP/2
// connection; a body above BulkMin goes over HTTP/1.1 (its own connection),
// a smaller one stays on HTTP/2; PutStream sends the blob once, with its
// digest and length.
func TestBulkUploadsOverHTTP1(t *testing.T) {
	type seen struct {
		Method, Proto, Digest string
		Length                int64
		Got                   int
	}
	var mu sync.Mutex
	var reqs []seen
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, seen{r.Method, r.Proto, r.URL.Query().Get("digest"), r.ContentLength, len(b)})
		mu.Unlock()
		if r.Method == http.MethodPost {
			w.Header().Set("Location", "/v2/a/blobs/uploads/u1")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tr, err := New(Options{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	reg := tr.Registry(strings.TrimPrefix(srv.URL, "https://"), RegistryOptions{})
	big := bytes.Repeat([]byte("x"), BulkMin+1)
	small := []byte("small")
	for _, blob := range [][]byte{big, small} {
		up, _, err := reg.startUpload(ctx, "a", "", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := up.PutStream(ctx, digest.FromBytes(blob), bytes.NewReader(blob), int64(len(blob))); err != nil {
			t.Fatal(err)
		}
		if up.Offset() != int64(len(blob)) {
			t.Errorf("offset %d after the PUT, want %d", up.Offset(), len(blob))
		}
	}
	want := []seen{
		{http.MethodPost, "HTTP/2.0", "", 0, 0},
		{http.MethodPut, "HTTP/1.1", digest.FromBytes(big).String(), int64(len(big)), len(big)},
		{http.MethodPost, "HTTP/2.0", "", 0, 0},
		{http.MethodPut, "HTTP/2.0", digest.FromBytes(small).String(), int64(len(small)), len(small)},
	}
	if diff := cmp.Diff(want, reqs); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if st := tr.Stats(); st.BlobUploads != 2 || st.Connections != 2 {
		t.Errorf("uploads %d, connections %d; want 2 and 2 (one HTTP/2, one HTTP/1.1)", st.BlobUploads, st.Connections)
	}
}

// TestPingLearnsChallenge: a ping opens the connection and learns the
// bearer challenge, so the next request fetches a token before it is sent
// instead of after a 401.
func TestPingLearnsChallenge(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var srv *httptest.Server
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		switch {
		case r.URL.Path == "/token":
			_, _ = io.WriteString(w, `{"token":"t1"}`)
		case r.Header.Get("Authorization") != "Bearer t1":
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="reg"`)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tr, err := New(Options{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	reg := tr.Registry(strings.TrimPrefix(srv.URL, "https://"), RegistryOptions{})
	if err := reg.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	there, _, err := reg.BlobExists(ctx, "a", digest.FromString("x"))
	if err != nil || there {
		t.Fatalf("BlobExists = %v, %v; want false, nil", there, err)
	}
	want := []string{"GET /v2/ auth=", "GET /token auth=", "HEAD /v2/a/blobs/" + digest.FromString("x").String() + " auth=Bearer t1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
