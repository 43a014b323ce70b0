package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
	"github.com/occystrap/occystrap/stage"
)

// names collects the config and layer names a source emits.
type names struct{ got []string }

func (n *names) Consume(_ context.Context, in <-chan stage.Item) error {
	for it := range in {
		if it.Body != nil {
			rc, err := it.Body.Open()
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return err
			}
		}
		n.got = append(n.got, it.Name)
		if err := it.Release(); err != nil {
			return err
		}
	}
	return nil
}

func (n *names) Properties() stage.SinkProperties { return stage.SinkProperties{Ordered: true} }

func TestRegistryInput(t *testing.T) {
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	amd, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 1, Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	arm, err := testregistry.NewImage(testregistry.ImageOptions{Seed: 2, Layers: 2, Arch: "arm64", Variant: "v8"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.PushIndex(ctx, "fixture/app", "v1", false, amd, arm); err != nil {
		t.Fatal(err)
	}
	wantNames := func(img testregistry.Image) []string {
		out := []string{img.ConfigDigest.Encoded() + ".json"}
		for _, l := range img.Layers {
			out = append(out, l.Digest.Encoded())
		}
		return out
	}
	tests := []struct {
		name string
		g    Globals
		uri  string
		want []string
	}{
		{"global-insecure", Globals{Insecure: true, Parallel: 2, OS: "linux", Architecture: "amd64", Retries: 3}, "registry://" + reg.Host + "/fixture/app:v1", wantNames(amd)},
		{"uri-options", Globals{Parallel: 4, OS: "linux", Architecture: "amd64", Retries: 3}, "registry://" + reg.Host + "/fixture/app:v1?insecure=true&arch=arm64&variant=v8&max_workers=1", wantNames(arm)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			g.TempDir = t.TempDir()
			a := &app{g: &g, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
			src, _, err := openInput(ctx, a, tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if got := src.Image(); got != (stage.Image{Name: "fixture/app", Tag: "v1"}) {
				t.Errorf("image %v", got)
			}
			sink := &names{}
			if _, err := stage.Run(ctx, src, nil, sink, stage.Options{}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, sink.got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			st, ok := a.transportStats()
			if !ok || st.Requests < int64(len(tc.want)+2) {
				t.Errorf("transport stats %+v, %v: want at least %d requests", st, ok, len(tc.want)+2)
			}
		})
	}
}
