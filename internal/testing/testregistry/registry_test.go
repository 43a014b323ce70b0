package testregistry

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/fixture"
)

// New runs a registry without a testing.TB that serves what is pushed,
// counts at its server, and stops on Close.
func TestNewCountsAndCloses(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := NewImage(ImageOptions{Seed: 1, Layers: 1, Compression: fixture.Uncompressed})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Push(context.Background(), "a/b", "v1", img); err != nil {
		t.Fatal(err)
	}
	if c := r.Counters(); c != (Counters{}) {
		t.Errorf("in-process pushes counted: %+v", c)
	}
	c := r.Client()
	for range 2 {
		resp, err := c.Get(r.URL + "/v2/a/b/blobs/" + img.Layers[0].Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || n != int64(len(img.Layers[0].Blob)) {
			t.Fatalf("GET blob: %s %s, %d bytes", resp.Status, resp.Proto, n)
		}
	}
	got := r.Counters()
	if got.Requests != 2 || got.Conns != 1 || got.Handshakes != 1 || got.BytesOut < 2*int64(len(img.Layers[0].Blob)) || got.BytesIn == 0 {
		t.Errorf("Counters = %+v, want 2 requests on 1 connection, 1 handshake, both blobs out", got)
	}
	c.CloseIdleConnections()
	r.Close()
	if _, err := c.Get(r.URL + "/v2/"); err == nil {
		t.Error("the registry still answers after Close")
	}
}
