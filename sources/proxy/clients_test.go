package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/testing/testdocker"
	"github.com/occystrap/occystrap/internal/testing/testenv"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	"github.com/occystrap/occystrap/sources/receiver"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/dockerclient"
)

// TestDockerPushThroughProxy pushes an image from the Docker engine into
// the proxy (as `docker push` does: the engine's push API; 127.0.0.1 is an
// insecure registry to the engine by default) and reads it back digest for
// digest: docker pull through the proxy gives the same image ID; the
// manifest digest the engine reported is served by the proxy and held by
// the downstream; the config digest equals the image ID; every layer's
// DiffID matches.
func TestDockerPushThroughProxy(t *testing.T) {
	eng := testdocker.Require(t)
	ctx := context.Background()
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	host, _ := startProxy(t, Options{Downstream: down.Host + "/mirror"})

	img := testdocker.Image("occy-proxy-push/app", "a", "b", "c")
	a := eng.Seed(t, img)
	c := dockerclient.New(eng.Socket)
	t.Cleanup(c.CloseIdle)
	id, err := c.Inspect(ctx, "occy-proxy-push/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/occy/app:v1"
	if err := c.Tag(ctx, "occy-proxy-push/app:v1", host+"/occy/app", "v1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove(context.Background(), ref) })
	var pushed digest.Digest
	digestLine := regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`)
	if err := c.Push(ctx, ref, func(s string) {
		if m := digestLine.FindStringSubmatch(s); m != nil {
			pushed = digest.Digest(m[1])
		}
	}); err != nil {
		t.Fatalf("docker push through the proxy: %v", err)
	}
	if pushed == "" {
		t.Fatal("the engine reported no digest for the push")
	}

	// docker pull through the proxy, the image gone from the engine first:
	// the same image ID.
	_ = c.Remove(ctx, ref)
	_ = c.Remove(ctx, "occy-proxy-push/app:v1")
	if err := dockerPull(ctx, eng.Socket, host+"/occy/app", "v1"); err != nil {
		t.Fatalf("docker pull through the proxy: %v", err)
	}
	if got, err := c.Inspect(ctx, ref); err != nil || got.ID != id.ID {
		t.Errorf("image pulled back: %v %s, pushed %s", err, got.ID, id.ID)
	}

	tr := newTransport(t)
	for _, tc := range []struct{ where, host, repo string }{
		{"proxy", host, "occy/app"}, {"downstream", down.Host, "mirror/occy/app"},
	} {
		m, err := tr.Registry(tc.host, plain).GetManifest(ctx, tc.repo, "v1", accept)
		if err != nil {
			t.Fatalf("manifest from the %s: %v", tc.where, err)
		}
		if m.Digest != pushed {
			t.Errorf("manifest from the %s: %s, the engine pushed %s", tc.where, m.Digest, pushed)
		}
		var man v1.Manifest
		if err := json.Unmarshal(m.Body, &man); err != nil {
			t.Fatal(err)
		}
		if man.Config.Digest != id.ID {
			t.Errorf("config from the %s: %s, the engine's image ID is %s", tc.where, man.Config.Digest, id.ID)
		}
		got, err := pulledDiffIDs(ctx, tr, tc.host, tc.repo, "v1")
		if err != nil {
			t.Fatalf("pull from the %s: %v", tc.where, err)
		}
		if diff := cmp.Diff(a.DiffIDs, got); diff != "" {
			t.Errorf("DiffIDs from the %s (-loaded +pulled):\n%s", tc.where, diff)
		}
	}
}

// dockerPull asks the engine at socket to pull repo:tag (what docker pull
// does) and reads its answer to the end; a line with an error fails.
func dockerPull(ctx context.Context, socket, repo, tag string) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
	defer hc.CloseIdleConnections()
	q := url.Values{"fromImage": {repo}, "tag": {tag}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/images/create?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Registry-Auth", "e30=")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct{ Error string }
		if err := dec.Decode(&line); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if line.Error != "" {
			return errors.New(line.Error)
		}
	}
}

// TestCranePushWithRetriedChunk copies an image into the proxy with crane
// while the first chunk's answer is lost: the proxy received the PATCH,
// crane saw a 503 and sent the blob again (in a new session, as
// go-containerregistry retries a whole upload). The image reads back
// digest for digest through the proxy and from the downstream.
func TestCranePushWithRetriedChunk(t *testing.T) {
	craneBin := testenv.Crane(t)
	ctx := context.Background()
	origin := testregistry.Start(t, testregistry.Options{Plain: true})
	img := newImage(t, 23, testregistry.ImageOptions{Layers: 3})
	if err := origin.Push(ctx, "base/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	srv := newHandler(t, down, Options{})
	var lost atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch && lost.CompareAndSwap(0, 1) {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, r) // the proxy takes the chunk...
			if rec.Code != http.StatusAccepted {
				t.Errorf("the chunk whose answer is lost: %d %s", rec.Code, rec.Body)
			}
			receiver.WriteError(w, http.StatusServiceUnavailable, transport.CodeUnavailable, "answer lost on purpose") // ...the client never hears
			return
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	host := strings.TrimPrefix(front.URL, "http://")
	if out, err := exec.Command(craneBin, "copy", "--insecure", origin.Host+"/base/app:v1", host+"/base/app:v1").CombinedOutput(); err != nil {
		t.Fatalf("crane copy into the proxy: %v\n%s", err, out)
	}
	if lost.Load() != 1 {
		t.Fatal("no PATCH went through the proxy")
	}
	for _, h := range []string{host, down.Host} {
		out, err := exec.Command(craneBin, "digest", "--insecure", h+"/base/app:v1").Output()
		if err != nil || strings.TrimSpace(string(out)) != img.Digest.String() {
			t.Errorf("crane digest of %s: %v %s, want %s", h, err, out, img.Digest)
		}
		if out, err := exec.Command(craneBin, "validate", "--insecure", "--remote", h+"/base/app:v1").CombinedOutput(); err != nil {
			t.Errorf("crane validate of %s: %v\n%s", h, err, out)
		}
	}
	got, err := pulledDiffIDs(ctx, newTransport(t), host, "base/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(diffIDs(img), got); diff != "" {
		t.Errorf("DiffIDs through the proxy (-pushed +pulled):\n%s", diff)
	}
}

// brokenReader gives r, then err instead of EOF: a body whose connection
// broke.
type brokenReader struct {
	r   io.Reader
	err error
}

func (b *brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, b.err
	}
	return n, err
}

// TestChunkResumedInSession pushes into the proxy with occystrap's own
// registry:// output in small PATCH chunks (Content-Range) while the first
// chunk's connection breaks halfway (the proxy keeps what arrived) and the
// second chunk's answer is lost (the proxy has it all). Each time the
// client asks the upload's status, goes on from the Range the proxy
// reports in the same session, and nothing is appended twice: the image
// reads back digest for digest.
func TestChunkResumedInSession(t *testing.T) {
	ctx := context.Background()
	origin := testregistry.Start(t, testregistry.Options{Plain: true})
	img := newImage(t, 29, testregistry.ImageOptions{Layers: 1, LayerSize: 1 << 20})
	if err := origin.Push(ctx, "base/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	srv := newHandler(t, down, Options{})
	var patches, statuses, posts atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/"):
			posts.Add(1)
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/uploads/"):
			statuses.Add(1)
		case r.Method == http.MethodPatch:
			switch patches.Add(1) {
			case 1: // half the chunk arrives, then the connection breaks
				r2 := r.Clone(r.Context())
				r2.Body = io.NopCloser(&brokenReader{io.LimitReader(r.Body, r.ContentLength/2), io.ErrUnexpectedEOF})
				srv.ServeHTTP(httptest.NewRecorder(), r2)
				panic(http.ErrAbortHandler)
			case 2: // the chunk arrives whole; its answer is lost
				srv.ServeHTTP(httptest.NewRecorder(), r)
				panic(http.ErrAbortHandler)
			}
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	host := strings.TrimPrefix(front.URL, "http://")
	tr := newTransport(t)
	src := registrysrc.New(tr, registrysrc.Options{Host: origin.Host, Repo: "base/app", Tag: "v1", Registry: plain})
	sink := registrysink.New(tr, registrysink.Options{Host: host, Repo: "base/app", Tag: "v1", Registry: plain,
		Workers: 1, ChunkSize: 256 << 10, Retries: 4})
	if _, err := stage.Run(ctx, src, nil, sink, stage.Options{}); err != nil {
		t.Fatalf("push into the proxy: %v", err)
	}
	if patches.Load() < 3 || statuses.Load() < 2 {
		t.Errorf("%d PATCHes and %d status GETs: the faults did not fire as planned", patches.Load(), statuses.Load())
	}
	if posts.Load() != 2 { // the config and the layer: one session each
		t.Errorf("%d upload sessions, want 2 (the layer resumed in its session)", posts.Load())
	}
	m, err := tr.Registry(down.Host, plain).GetManifest(ctx, "base/app", "v1", accept)
	if err != nil || m.Digest != img.Digest {
		t.Fatalf("downstream manifest: %v %s, want %s", err, m.Digest, img.Digest)
	}
	got, err := pulledDiffIDs(ctx, tr, host, "base/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(diffIDs(img), got); diff != "" {
		t.Errorf("DiffIDs through the proxy (-pushed +pulled):\n%s", diff)
	}
}
