package registry_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

// TestFaults puts the shared fault injector in front of the registry: each
// fault either recovers with the same output as a clean pull, or fails with
// a clear error; either way no temporary file is left (pull checks).
func TestFaults(t *testing.T) {
	ctx := context.Background()
	img := mustImage(t, testregistry.ImageOptions{Seed: 30, Layers: 4, LayerSize: 256 << 10})
	layer := img.Layers[1].Digest.String()
	tests := []struct {
		name   string
		faults []testregistry.Fault
		auth   testregistry.Auth
		plain  bool
		// wantErr nil: must recover with identical output.
		wantErr error
		wantMsg string
		check   func(t *testing.T, st transport.Stats, reg *testregistry.Registry)
	}{
		{name: "429-retry-after-seconds", faults: []testregistry.Fault{{Kind: testregistry.TooMany, Match: testregistry.IsManifestGet, RetryAfter: "1"}},
			check: func(t *testing.T, st transport.Stats, _ *testregistry.Registry) {
				if st.RateLimited != 1 || st.Retries != 1 {
					t.Errorf("rate limited %d, retries %d; want 1 and 1", st.RateLimited, st.Retries)
				}
			}},
		{name: "429-retry-after-date", faults: []testregistry.Fault{{Kind: testregistry.TooMany, Match: testregistry.IsBlobGetOf(layer),
			RetryAfter: time.Now().Add(time.Second).UTC().Format(http.TimeFormat)}},
			check: func(t *testing.T, st transport.Stats, _ *testregistry.Registry) {
				if st.RateLimited != 1 {
					t.Errorf("rate limited %d, want 1", st.RateLimited)
				}
			}},
		{name: "503-burst", faults: []testregistry.Fault{{Kind: testregistry.Unavailable, Match: testregistry.IsBlobGet, Times: 3}},
			check: func(t *testing.T, st transport.Stats, _ *testregistry.Registry) {
				if st.Retries != 3 {
					t.Errorf("retries %d, want 3", st.Retries)
				}
			}},
		{name: "503-burst-plain-http", plain: true, faults: []testregistry.Fault{{Kind: testregistry.Unavailable, Match: testregistry.IsBlobGet, Times: 3}}},
		{name: "503-forever", faults: []testregistry.Fault{{Kind: testregistry.Unavailable, Match: testregistry.IsManifestGet, Times: -1}},
			wantErr: transport.ErrStatus, wantMsg: "503 Service Unavailable"},
		{name: "cut-mid-blob", faults: []testregistry.Fault{{Kind: testregistry.Cut, Match: testregistry.IsBlobGetOf(layer)}},
			check: wantResumes},
		{name: "cut-mid-blob-plain-http", plain: true, faults: []testregistry.Fault{{Kind: testregistry.Cut, Match: testregistry.IsBlobGetOf(layer)}},
			check: wantResumes},
		{name: "short-body", faults: []testregistry.Fault{{Kind: testregistry.Short, Match: testregistry.IsBlobGetOf(layer)}},
			check: wantResumes},
		{name: "cut-every-time", faults: []testregistry.Fault{{Kind: testregistry.Cut, Match: testregistry.IsBlobGetOf(layer), Times: -1}},
			wantErr: nil, wantMsg: "gave up after 3 resumes"},
		{name: "corrupt-layer", faults: []testregistry.Fault{{Kind: testregistry.Corrupt, Match: testregistry.IsBlobGetOf(layer)}},
			wantErr: transport.ErrDigestMismatch, wantMsg: "fetch blob " + layer},
		{name: "corrupt-config", faults: []testregistry.Fault{{Kind: testregistry.Corrupt, Match: testregistry.IsBlobGetOf(img.ConfigDigest.String())}},
			wantErr: transport.ErrDigestMismatch, wantMsg: "fetch blob " + img.ConfigDigest.String()},
		{name: "redirect-to-blob-store", auth: testregistry.AuthToken,
			faults: []testregistry.Fault{{Kind: testregistry.Redirect, Match: testregistry.WithAuth(testregistry.IsBlobGet), Times: -1}},
			check: func(t *testing.T, _ transport.Stats, reg *testregistry.Registry) {
				total, withAuth := reg.BlobStoreRequests()
				if total < int64(len(img.Layers)+1) || withAuth != 0 {
					t.Errorf("blob store got %d requests, %d with Authorization; want at least %d, none with it", total, withAuth, len(img.Layers)+1)
				}
			}},
		{name: "redirect-then-cut", auth: testregistry.AuthToken,
			faults: []testregistry.Fault{
				{Kind: testregistry.Redirect, Match: testregistry.WithAuth(testregistry.IsBlobGet), Times: -1},
				{Kind: testregistry.Cut, Match: testregistry.IsBlobGetOf(layer)},
			},
			check: wantResumes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := testregistry.NewInjector(tc.faults...)
			reg := testregistry.Start(t, testregistry.Options{Auth: tc.auth, Plain: tc.plain, Wrap: in.Wrap, BlobStore: true})
			in.SetRedirectTarget(reg.BlobStoreURL)
			if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			tr := newTransport(t, reg, nil)
			res, _, err := pull(t, tr, reg, pullOpts{repo: "fixture/app", tag: "v1", workers: 3, reg: transport.RegistryOptions{Insecure: tc.plain}})
			fired := 0
			for _, f := range tc.faults {
				fired += in.Fired(f.Kind)
			}
			if fired == 0 {
				t.Errorf("no fault fired")
			}
			if tc.wantErr == nil && tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("did not recover: %v", err)
				}
				if diff := cmp.Diff(want(img), res); diff != "" {
					t.Errorf("recovered output differs (-want +got):\n%s", diff)
				}
			} else {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("got error %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
				}
				t.Logf("error as reported: %v", err)
			}
			if tc.check != nil {
				tc.check(t, tr.Stats(), reg)
			}
		})
	}
}

func wantResumes(t *testing.T, st transport.Stats, _ *testregistry.Registry) {
	t.Helper()
	if st.Resumes < 1 {
		t.Errorf("resumes %d, want at least 1 (a Range request, not a restart)", st.Resumes)
	}
}

// TestRetryAfterCancel: a long Retry-After wait ends when the run is
// cancelled.
func TestRetryAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := testregistry.NewInjector(testregistry.Fault{Kind: testregistry.TooMany, RetryAfter: "3600", Times: -1,
		Match: func(r *http.Request) bool { cancel(); return true }})
	reg := testregistry.Start(t, testregistry.Options{Wrap: in.Wrap})
	tr := newTransport(t, reg, nil)
	src := registrysrc.New(tr, registrysrc.Options{Host: reg.Host, Repo: "fixture/app", Tag: "v1", TempDir: t.TempDir()})
	_, err := stage.Run(ctx, src, nil, &collector{}, stage.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestExpiredToken: a 401 on a token the client still thinks valid makes it
// fetch a new one, once.
func TestExpiredToken(t *testing.T) {
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{Auth: testregistry.AuthToken})
	img := mustImage(t, testregistry.ImageOptions{Seed: 31})
	if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, reg, nil)
	for i := range 2 {
		res, _, err := pull(t, tr, reg, pullOpts{repo: "fixture/app", tag: "v1"})
		if err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
		if diff := cmp.Diff(want(img), res); diff != "" {
			t.Errorf("pull %d differs (-want +got):\n%s", i, diff)
		}
		reg.ExpireTokens()
	}
	if n := reg.TokensIssued(); n != 2 {
		t.Errorf("tokens issued %d, want 2 (one, then one refresh)", n)
	}
}
