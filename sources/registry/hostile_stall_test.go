package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/transport"
)

// TestStalledBody: a blob body that stops sending fails its read after the
// stall timeout and is resumed like a cut connection, even with no retries;
// one that stalls every time fails with ErrStalled; so does a stalled
// manifest. The server sees the client give up (no wall-clock assertion).
func TestStalledBody(t *testing.T) {
	ctx := context.Background()
	img := mustImage(t, testregistry.ImageOptions{Seed: 41, Layers: 3, LayerSize: 256 << 10})
	layer := img.Layers[1].Digest.String()
	hold := int64(20 * time.Second) // the injector's own give-up: a client that never notices fails
	tests := []struct {
		name    string
		fault   testregistry.Fault
		wantErr error
	}{
		{"once", testregistry.Fault{Kind: testregistry.Stall, Match: testregistry.IsBlobGetOf(layer), Limit: hold}, nil},
		{"every-time", testregistry.Fault{Kind: testregistry.Stall, Match: testregistry.IsBlobGetOf(layer), Limit: hold, Times: -1}, transport.ErrStalled},
		{"manifest", testregistry.Fault{Kind: testregistry.Stall, Match: testregistry.IsManifestGet, Limit: hold}, transport.ErrStalled},
	}
	for _, tc := range tests {
		for _, plain := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/h2", true: "/http1"}[plain]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				in := testregistry.NewInjector(tc.fault)
				reg := testregistry.Start(t, testregistry.Options{Plain: plain, Wrap: in.Wrap})
				if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
					t.Fatal(err)
				}
				tr := newTransport(t, reg, func(o *transport.Options) {
					o.StallTimeout = time.Second // short, yet long enough that a loaded -race run never stalls by itself
					o.NoRetries = true
				})
				res, _, err := pull(t, tr, reg, pullOpts{repo: "fixture/app", tag: "v1", reg: transport.RegistryOptions{Insecure: plain}})
				in.WaitStalls()
				if in.Abandoned() == 0 {
					t.Errorf("the client never gave up on the stalled body (stalls: %d)", in.Fired(testregistry.Stall))
				}
				if tc.wantErr == nil {
					if err != nil {
						t.Fatalf("did not recover: %v", err)
					}
					if diff := cmp.Diff(want(img), res); diff != "" {
						t.Errorf("recovered output differs (-want +got):\n%s", diff)
					}
					wantResumes(t, tr.Stats(), reg)
					return
				}
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				t.Logf("error as reported: %v", err)
			})
		}
	}
}
