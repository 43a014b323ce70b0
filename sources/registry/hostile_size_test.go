package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/transport"
)

// lyingManifest serves img's manifest with its config descriptor's size
// replaced.
func lyingManifest(t *testing.T, img testregistry.Image, size int64) http.Handler {
	var m v1.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Config.Size = size
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", img.MediaType)
		_, _ = w.Write(b)
	})
}

// TestEndlessDocuments: every document read into memory is read through a
// limit, and a declared size is enforced while reading: a config whose
// descriptor declares no size (-1) or less than its endless body, an endless
// manifest and an endless token response all fail, and the server never
// gets to send more than a bounded amount.
func TestEndlessDocuments(t *testing.T) {
	ctx := context.Background()
	img := mustImage(t, testregistry.ImageOptions{Seed: 42, Layers: 1})
	config := img.ConfigDigest.String()
	// The endless bodies stop at 48 MiB on their own; a client reading to
	// the end (or to a 64 MiB limit) would make the server send it all.
	const endless, bound = 48 << 20, 40 << 20
	isToken := func(r *http.Request) bool { return r.URL.Path == "/token" }
	tests := []struct {
		name    string
		auth    testregistry.Auth
		faults  []testregistry.Fault
		meta    bool // through Metadata (info, check) rather than a pull
		wantErr error
	}{
		{name: "config-size-minus-one", faults: []testregistry.Fault{
			{Kind: testregistry.Serve, Match: testregistry.IsManifestGet, Handler: lyingManifest(t, img, -1), Times: -1},
			{Kind: testregistry.Endless, Match: testregistry.IsBlobGetOf(config), Limit: endless, Times: -1},
		}, wantErr: transport.ErrSizeMismatch},
		{name: "config-size-too-small", faults: []testregistry.Fault{
			{Kind: testregistry.Serve, Match: testregistry.IsManifestGet, Handler: lyingManifest(t, img, 100), Times: -1},
			{Kind: testregistry.Endless, Match: testregistry.IsBlobGetOf(config), Limit: endless, Times: -1},
		}, wantErr: transport.ErrSizeMismatch},
		{name: "config-endless-metadata", meta: true, faults: []testregistry.Fault{
			{Kind: testregistry.Endless, Match: testregistry.IsBlobGetOf(config), Limit: endless, Times: -1},
		}, wantErr: transport.ErrSizeMismatch},
		{name: "manifest-endless", faults: []testregistry.Fault{
			{Kind: testregistry.Endless, Match: testregistry.IsManifestGet, Limit: endless, Times: -1},
		}, wantErr: transport.ErrTooLarge},
		{name: "token-endless", auth: testregistry.AuthToken, faults: []testregistry.Fault{
			{Kind: testregistry.Endless, Match: isToken, Body: []byte(`{"token":"`), Limit: endless, Times: -1},
		}, wantErr: transport.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := testregistry.NewInjector(tc.faults...)
			reg := testregistry.Start(t, testregistry.Options{Plain: true, Auth: tc.auth, Wrap: in.Wrap})
			if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			tr := newTransport(t, reg, func(o *transport.Options) { o.NoRetries = true })
			var err error
			if tc.meta {
				src := registrysrc.New(tr, registrysrc.Options{Host: reg.Host, Repo: "fixture/app", Tag: "v1", TempDir: t.TempDir(), Registry: transport.RegistryOptions{Insecure: true}})
				_, err = src.Metadata(ctx)
			} else {
				_, _, err = pull(t, tr, reg, pullOpts{repo: "fixture/app", tag: "v1", reg: transport.RegistryOptions{Insecure: true}})
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			} else {
				t.Logf("error as reported: %v", err)
			}
			if sent := in.Sent(); sent > bound {
				t.Errorf("the server sent %d MiB of an endless body", sent>>20)
			}
		})
	}
}
