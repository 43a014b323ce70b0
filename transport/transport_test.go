package transport

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"github.com/sourcegraph/conc/pool"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The reference registry's background goroutines (adaptive_test,
		// TestSecretHook) outlive a test by design of that library.
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/notifications.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Queue).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/registry/storage/driver/base.(*regulator).enter"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		in   string
		want []Challenge
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`,
			[]Challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}}}},
		{`Bearer service="s", scope="repository:a/b:pull,push", realm="https://x/t"`,
			[]Challenge{{"bearer", map[string]string{"realm": "https://x/t", "service": "s", "scope": "repository:a/b:pull,push"}}}},
		{`Basic realm="Registry Realm"`, []Challenge{{"basic", map[string]string{"realm": "Registry Realm"}}}},
		{`Basic realm="r", Bearer realm="https://x/t",service=s`,
			[]Challenge{{"basic", map[string]string{"realm": "r"}}, {"bearer", map[string]string{"realm": "https://x/t", "service": "s"}}}},
		{`BEARER Realm="a\"b"`, []Challenge{{"bearer", map[string]string{"realm": `a"b`}}}},
		{``, nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, ParseChallenges(tc.in)); diff != "" {
			t.Errorf("ParseChallenges(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func FuzzParseChallenges(f *testing.F) {
	f.Add(`Bearer realm="https://x/t",service="s",scope="repository:a:pull"`)
	f.Add(`Basic realm="r", Bearer a=b`)
	f.Add(`=,"\`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range ParseChallenges(s) {
			if c.Scheme == "" || c.Params == nil {
				t.Fatalf("bad challenge %+v from %q", c, s)
			}
		}
	})
}

func TestMergeScopes(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{[]string{"repository:a/b:pull", "repository:a/b:push"}, []string{"repository:a/b:pull,push"}},
		{[]string{"repository:a:pull", "repository:b:pull repository:a:push,pull"}, []string{"repository:a:pull,push", "repository:b:pull"}},
		{[]string{"", "registry:catalog:*"}, []string{"registry:catalog:*"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, MergeScopes(tc.in...)); diff != "" {
			t.Errorf("MergeScopes(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		d, ok := parseRetryAfter(tc.in, now)
		if d != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := range 30 {
		d := tr.backoff(100*time.Millisecond, 2*time.Second, attempt, nil)
		hi := min(100*time.Millisecond<<min(attempt, 20), 2*time.Second)
		if d < hi/2 || d > hi {
			t.Errorf("attempt %d: backoff %v outside [%v, %v]", attempt, d, hi/2, hi)
		}
	}
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"4"}}}
	if d := tr.backoff(time.Millisecond, time.Second, 0, resp); d != 4*time.Second {
		t.Errorf("Retry-After 4: backoff %v", d)
	}
}

func TestDockerConfigCredentials(t *testing.T) {
	dir := t.TempDir()
	bin := t.TempDir()
	helper := "#!/bin/sh\nread host\nif [ \"$host\" = helped.example ]; then echo '{\"Username\":\"hu\",\"Secret\":\"hs\"}'; elif [ \"$host\" = https://index.docker.io/v1/ ]; then echo '{\"Username\":\"du\",\"Secret\":\"ds\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-fake"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cfg := fmt.Sprintf(`{"auths":{"https://plain.example/v1/":{"auth":%q},"fields.example":{"username":"fu","password":"fp"}},
		"credHelpers":{"helped.example":"fake"},"credsStore":"fake"}`, base64.StdEncoding.EncodeToString([]byte("pu:pp:x")))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newCredentialStore(dir)
	tests := []struct {
		host, user, pass string
		ok               bool
	}{
		{"plain.example", "pu", "pp:x", true},
		{"fields.example", "fu", "fp", true},
		{"helped.example", "hu", "hs", true},
		{"registry-1.docker.io", "du", "ds", true}, // asked as Docker asks for Docker Hub
		{"unknown.example", "", "", false},         // the store's helper knows nothing
	}
	for _, tc := range tests {
		u, p, ok, err := s.lookup(context.Background(), tc.host)
		if err != nil || u != tc.user || p != tc.pass || ok != tc.ok {
			t.Errorf("lookup(%s) = %q, %q, %v, %v; want %q, %q, %v", tc.host, u, p, ok, err, tc.user, tc.pass, tc.ok)
		}
	}
}

// TestRateLimit: one limiter shared by concurrent requests delays them.
// At 4 requests a second (one every 250 ms, burst 1), requests started
// together wait whatever the scheduler does: at 50 a second, a loaded
// machine started them 20 ms apart and some did not wait.
func TestRateLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tr, err := New(Options{RateLimit: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	reg := tr.Registry(strings.TrimPrefix(srv.URL, "http://"), RegistryOptions{Insecure: true})
	p := pool.New().WithErrors()
	for range 3 {
		p.Go(func() error {
			resp, err := reg.Do(context.Background(), Request{Method: http.MethodGet, URL: reg.URL("/v2/")})
			if err == nil {
				resp.Body.Close()
			}
			return err
		})
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if st := tr.Stats(); st.RateLimitWaits != 2 || st.Requests != 3 {
		t.Errorf("waits %d, requests %d; want 2 waits of 3 requests", st.RateLimitWaits, st.Requests)
	}
}

// TestBlobResumeIgnoredRange: a server that ignores Range still resumes
// correctly (the received prefix is skipped, not re-hashed).
func TestBlobResumeIgnoredRange(t *testing.T) {
	blob := []byte(strings.Repeat("occystrap ", 10000))
	d := digest.FromBytes(blob)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			_, _ = w.Write(blob[:len(blob)/3])
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				c.Close()
			}
			return
		}
		_, _ = w.Write(blob) // ignores Range
	}))
	defer srv.Close()
	tr, err := New(Options{RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	reg := tr.Registry(strings.TrimPrefix(srv.URL, "http://"), RegistryOptions{Insecure: true})
	rc, err := reg.Blob(context.Background(), "a/b", d, int64(len(blob)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(blob) {
		t.Errorf("got %d bytes, want the %d-byte blob", len(got), len(blob))
	}
	if st := tr.Stats(); st.Resumes != 1 {
		t.Errorf("resumes %d, want 1", st.Resumes)
	}
}

// TestRedirectDropsAuthorization: credentials stay with the registry host.
func TestRedirectDropsAuthorization(t *testing.T) {
	var leaked atomic.Int32
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		_, _ = w.Write([]byte("x"))
	}))
	defer store.Close()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, store.URL+"/blob", http.StatusTemporaryRedirect)
	}))
	defer reg.Close()
	tr, err := New(Options{Username: "u", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r := tr.Registry(strings.TrimPrefix(reg.URL, "http://"), RegistryOptions{Insecure: true})
	rc, err := r.Blob(context.Background(), "a/b", digest.FromString("x"), 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "x" {
		t.Fatalf("got %q, %v", b, err)
	}
	if leaked.Load() != 0 {
		t.Errorf("Authorization sent to the other host %d times", leaked.Load())
	}
}

// TestSSLCertFile: SSL_CERT_FILE adds to the trusted roots, and HTTP/2 is
// negotiated by ALPN.
func TestSSLCertFile(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", f)
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	reg := tr.Registry(strings.TrimPrefix(srv.URL, "https://"), RegistryOptions{})
	resp, err := reg.Do(context.Background(), Request{Method: http.MethodGet, URL: reg.URL("/v2/")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "HTTP/2.0" {
		t.Errorf("got %q, %v; want HTTP/2.0", b, err)
	}
	if st := tr.Stats(); st.TLSHandshakes != 1 || st.Connections != 1 {
		t.Errorf("handshakes %d, connections %d; want 1 and 1", st.TLSHandshakes, st.Connections)
	}
}
