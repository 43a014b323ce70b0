package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysink "github.com/occystrap/occystrap/sinks/registry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/filter"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/mediatype"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/notifications.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Queue).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/registry/storage/driver/base.(*regulator).enter"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

func newTransport(t testing.TB) *transport.Transport {
	t.Helper()
	tr, err := transport.New(transport.Options{NoRetries: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

var plain = transport.RegistryOptions{Insecure: true}

// accept asks for single-platform manifests.
var accept = []string{mediatype.DockerManifest, v1.MediaTypeImageManifest}

// counter counts a registry's requests by "METHOD kind" (kind = manifests,
// blobs or uploads).
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "other"
		switch {
		case strings.Contains(r.URL.Path, "/blobs/uploads"):
			kind = "uploads"
		case strings.Contains(r.URL.Path, "/blobs/"):
			kind = "blobs"
		case strings.Contains(r.URL.Path, "/manifests/"):
			kind = "manifests"
		}
		c.mu.Lock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[r.Method+" "+kind]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// startProxy serves a proxy on 127.0.0.1:0 until the test ends; stop ends
// it early and returns its counters.
func startProxy(t *testing.T, opts Options) (host string, stop func() Stats) {
	t.Helper()
	if opts.Transport == nil {
		opts.Transport = newTransport(t)
	}
	opts.DownstreamRegistry, opts.UpstreamRegistry = plain, plain
	opts.TempDir = t.TempDir()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lg := zerolog.New(io.Discard)
	ctx, cancel := context.WithCancel(lg.WithContext(context.Background()))
	p := pool.New().WithErrors()
	p.Go(func() error { return srv.Serve(ctx, l) })
	var once sync.Once
	stop = func() Stats {
		once.Do(func() {
			cancel()
			if err := p.Wait(); err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
		return srv.Stats()
	}
	t.Cleanup(func() { stop() })
	return l.Addr().String(), stop
}

// serveBench serves srv on 127.0.0.1:0; stop ends it.
func serveBench(tb testing.TB, srv *Server) (host string, stop func()) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	lg := zerolog.New(io.Discard)
	ctx, cancel := context.WithCancel(lg.WithContext(context.Background()))
	p := pool.New().WithErrors()
	p.Go(func() error { return srv.Serve(ctx, l) })
	return l.Addr().String(), func() {
		cancel()
		if err := p.Wait(); err != nil {
			tb.Errorf("Serve: %v", err)
		}
	}
}

// copyImage moves an image between registries with our own registry
// source and sink: the "real client" pushing into the proxy.
func copyImage(ctx context.Context, tr *transport.Transport, fromHost, fromRepo, fromTag, toHost, toRepo, toTag string) error {
	src := registrysrc.New(tr, registrysrc.Options{Host: fromHost, Repo: fromRepo, Tag: fromTag, Registry: plain})
	sink := registrysink.New(tr, registrysink.Options{Host: toHost, Repo: toRepo, Tag: toTag, Registry: plain, Workers: 2, Pushed: registrysink.NewPushed()})
	_, err := stage.Run(ctx, src, nil, sink, stage.Options{})
	return err
}

func newImage(t *testing.T, seed uint64, o testregistry.ImageOptions) testregistry.Image {
	t.Helper()
	o.Seed = seed
	img, err := testregistry.NewImage(o)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func diffIDs(img testregistry.Image) []digest.Digest {
	var out []digest.Digest
	for _, l := range img.Layers {
		out = append(out, l.DiffID)
	}
	return out
}

// pulledDiffIDs reads repo:tag from host with the registry source and
// returns the DiffIDs of the layers it delivers (hashing their content).
func pulledDiffIDs(ctx context.Context, tr *transport.Transport, host, repo, tag string) ([]digest.Digest, error) {
	src := registrysrc.New(tr, registrysrc.Options{Host: host, Repo: repo, Tag: tag, Registry: plain})
	sink := &diffSink{}
	if _, err := stage.Run(ctx, src, nil, sink, stage.Options{}); err != nil {
		return nil, err
	}
	return sink.ids, nil
}

// diffSink hashes every layer it gets, in order.
type diffSink struct{ ids []digest.Digest }

func (s *diffSink) Properties() stage.SinkProperties { return stage.SinkProperties{Ordered: true} }

func (s *diffSink) Consume(ctx context.Context, in <-chan stage.Item) error {
	for it := range in {
		if it.Kind != stage.KindLayer {
			continue
		}
		rc, err := it.Body.Open()
		if err != nil {
			_ = it.Release()
			return err
		}
		d, err := digest.FromReader(rc)
		rc.Close()
		_ = it.Release()
		if err != nil {
			return err
		}
		s.ids = append(s.ids, d)
	}
	return ctx.Err()
}

func TestPushThroughProxy(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    testregistry.ImageOptions
	}{
		{"docker-gzip", testregistry.ImageOptions{Layers: 3}},
		{"oci-zstd", testregistry.ImageOptions{Layers: 2, OCI: true, Compression: fixture.Zstd}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			origin := testregistry.Start(t, testregistry.Options{Plain: true})
			var dc counter
			down := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: dc.wrap})
			img := newImage(t, 7, tc.o)
			if err := origin.Push(ctx, "lib/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			host, stop := startProxy(t, Options{Downstream: down.Host + "/mirror"})
			tr := newTransport(t)
			if err := copyImage(ctx, tr, origin.Host, "lib/app", "v1", host, "lib/app", "v1"); err != nil {
				t.Fatalf("push into the proxy: %v", err)
			}
			got, err := pulledDiffIDs(ctx, tr, down.Host, "mirror/lib/app", "v1")
			if err != nil {
				t.Fatalf("pull from downstream: %v", err)
			}
			if diff := cmp.Diff(diffIDs(img), got); diff != "" {
				t.Errorf("downstream DiffIDs (-want +got):\n%s", diff)
			}
			// No filter: the blobs are copied as received, so the
			// downstream holds the very manifest pushed.
			m, err := tr.Registry(down.Host, plain).GetManifest(ctx, "mirror/lib/app", "v1", accept)
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest != img.Digest {
				t.Errorf("downstream manifest %s, want the pushed %s", m.Digest, img.Digest)
			}
			// The proxy serves the accepted manifest by tag and by digest.
			pr := tr.Registry(host, plain)
			for _, ref := range []string{"v1", img.Digest.String()} {
				pm, err := pr.GetManifest(ctx, "lib/app", ref, accept)
				if err != nil {
					t.Fatalf("manifest %s from the proxy: %v", ref, err)
				}
				if !bytes.Equal(pm.Body, img.Manifest) || pm.MediaType != img.MediaType {
					t.Errorf("manifest %s from the proxy: %s %q, want %s", ref, pm.MediaType, pm.Body, img.MediaType)
				}
			}
			if _, err := pr.GetManifest(ctx, "lib/app", "v2", accept); !errors.Is(err, transport.ErrNotFound) {
				t.Errorf("unknown tag: %v, want not found", err)
			}
			st := stop()
			if st.Pushed != 1 || st.PushFailed != 0 {
				t.Errorf("stats %+v, want 1 pushed", st)
			}
			if dc.get("PUT manifests") != 1 {
				t.Errorf("downstream manifest PUTs %d, want 1", dc.get("PUT manifests"))
			}
		})
	}
}

// do sends one request to h and returns the recorder.
func do(h http.Handler, method, target, ctype string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// doH sends one request with headers to h.
func doH(h http.Handler, method, target string, hdr map[string]string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// newHandler is a proxy used as a plain handler in front of down.
func newHandler(t *testing.T, down *testregistry.Registry, opts Options) *Server {
	t.Helper()
	opts.Transport, opts.Downstream, opts.DownstreamRegistry, opts.TempDir = newTransport(t), down.Host, plain, t.TempDir()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// pushBlob uploads p into repo of h in one POST and PUT.
func pushBlob(t *testing.T, h http.Handler, repo string, p []byte) digest.Digest {
	t.Helper()
	rec := do(h, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil)
	d := digest.FromBytes(p)
	if rec := do(h, http.MethodPut, rec.Header().Get("Location")+"?digest="+d.String(), "", p); rec.Code != http.StatusCreated {
		t.Fatalf("push blob to %s: %d %s", repo, rec.Code, rec.Body)
	}
	return d
}

func TestEndpoints(t *testing.T) {
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	srv := newHandler(t, down, Options{})
	blob := []byte("some layer bytes")
	d := digest.FromBytes(blob)

	rec := do(srv, http.MethodGet, "/v2/", "", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Docker-Distribution-API-Version") != "registry/2.0" || rec.Body.String() != "{}" {
		t.Errorf("GET /v2/: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	if rec := do(srv, http.MethodHead, "/v2/a/b/blobs/"+d.String(), "", nil); rec.Code != http.StatusNotFound {
		t.Errorf("HEAD before upload: %d, want 404", rec.Code)
	}

	// Chunked: POST, PATCH with Content-Range, the same chunk again
	// (416, not appended), an out-of-order chunk (416), the status, the
	// second chunk, a PUT with no body.
	rec = do(srv, http.MethodPost, "/v2/a/b/blobs/uploads/", "", nil)
	if rec.Code != http.StatusAccepted || rec.Header().Get("Range") != "0-0" {
		t.Fatalf("POST: %d %v", rec.Code, rec.Header())
	}
	loc := rec.Header().Get("Location")
	if !strings.HasPrefix(loc, "/v2/a/b/blobs/uploads/") {
		t.Fatalf("Location %q", loc)
	}
	chunk := func(from, to int) map[string]string {
		return map[string]string{"Content-Range": fmt.Sprintf("%d-%d", from, to-1)}
	}
	if rec := doH(srv, http.MethodPatch, loc, chunk(0, 5), blob[:5]); rec.Code != http.StatusAccepted || rec.Header().Get("Range") != "0-4" {
		t.Fatalf("PATCH 1: %d %v", rec.Code, rec.Header())
	}
	if rec := doH(srv, http.MethodPatch, loc, chunk(0, 5), blob[:5]); rec.Code != http.StatusRequestedRangeNotSatisfiable || rec.Header().Get("Range") != "0-4" {
		t.Errorf("PATCH 1 retried: %d %v, want 416 with Range 0-4", rec.Code, rec.Header())
	}
	if rec := doH(srv, http.MethodPatch, loc, chunk(7, len(blob)), blob[7:]); rec.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("PATCH out of order: %d, want 416", rec.Code)
	}
	if rec := do(srv, http.MethodGet, loc, "", nil); rec.Code != http.StatusNoContent || rec.Header().Get("Range") != "0-4" || rec.Header().Get("Location") != loc {
		t.Errorf("upload status: %d %v, want 204 Range 0-4 Location %s", rec.Code, rec.Header(), loc)
	}
	if rec := do(srv, http.MethodGet, strings.Replace(loc, "/a/b/", "/other/", 1), "", nil); rec.Code != http.StatusNotFound {
		t.Errorf("upload status under another repository: %d, want 404", rec.Code)
	}
	if rec := doH(srv, http.MethodPatch, loc, chunk(5, len(blob)), blob[5:]); rec.Code != http.StatusAccepted || rec.Header().Get("Range") != fmt.Sprintf("0-%d", len(blob)-1) {
		t.Fatalf("PATCH 2: %d %v", rec.Code, rec.Header())
	}
	rec = do(srv, http.MethodPut, loc+"?digest="+d.String(), "", nil)
	if rec.Code != http.StatusCreated || rec.Header().Get("Docker-Content-Digest") != d.String() || rec.Header().Get("Location") != "/v2/a/b/blobs/"+d.String() {
		t.Fatalf("PUT: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	rec = do(srv, http.MethodHead, "/v2/a/b/blobs/"+d.String(), "", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Length") != fmt.Sprint(len(blob)) {
		t.Errorf("HEAD after upload: %d %v", rec.Code, rec.Header())
	}
	if rec := do(srv, http.MethodGet, "/v2/a/b/blobs/"+d.String(), "", nil); rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), blob) {
		t.Errorf("GET blob: %d %q", rec.Code, rec.Body)
	}
	if rec := doH(srv, http.MethodGet, "/v2/a/b/blobs/"+d.String(), map[string]string{"Range": "bytes=2-5"}, nil); rec.Code != http.StatusPartialContent || rec.Body.String() != string(blob[2:6]) {
		t.Errorf("GET blob range: %d %q", rec.Code, rec.Body)
	}
	// Blobs are seen only in their repository, until mounted.
	if rec := do(srv, http.MethodGet, "/v2/other/blobs/"+d.String(), "", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET blob from another repository: %d, want 404", rec.Code)
	}
	if rec := do(srv, http.MethodPost, "/v2/other/blobs/uploads/?mount="+d.String()+"&from=a/b", "", nil); rec.Code != http.StatusCreated || rec.Header().Get("Location") != "/v2/other/blobs/"+d.String() {
		t.Errorf("mount: %d %v", rec.Code, rec.Header())
	}
	if rec := do(srv, http.MethodGet, "/v2/other/blobs/"+d.String(), "", nil); rec.Code != http.StatusOK {
		t.Errorf("GET mounted blob: %d", rec.Code)
	}

	// A whole blob in one POST; a wrong digest: 400 and not kept; no
	// digest: 400; an unknown upload: 404; a malformed digest: 400.
	single := []byte("single post")
	if rec := do(srv, http.MethodPost, "/v2/a/b/blobs/uploads/?digest="+digest.FromBytes(single).String(), "", single); rec.Code != http.StatusCreated {
		t.Errorf("single POST: %d %s", rec.Code, rec.Body)
	}
	if rec := do(srv, http.MethodHead, "/v2/a/b/blobs/"+digest.FromBytes(single).String(), "", nil); rec.Code != http.StatusOK {
		t.Errorf("HEAD after single POST: %d", rec.Code)
	}
	other := []byte("other bytes")
	rec = do(srv, http.MethodPost, "/v2/a/b/blobs/uploads/", "", nil)
	wrong := digest.FromString("nope")
	if rec := do(srv, http.MethodPut, rec.Header().Get("Location")+"?digest="+wrong.String(), "", other); rec.Code != http.StatusBadRequest {
		t.Errorf("PUT with a wrong digest: %d, want 400", rec.Code)
	}
	if rec := do(srv, http.MethodHead, "/v2/a/b/blobs/"+digest.FromBytes(other).String(), "", nil); rec.Code != http.StatusNotFound {
		t.Errorf("HEAD of a refused blob: %d, want 404", rec.Code)
	}
	rec = do(srv, http.MethodPost, "/v2/a/b/blobs/uploads/", "", nil)
	if rec := do(srv, http.MethodPut, rec.Header().Get("Location"), "", other); rec.Code != http.StatusBadRequest {
		t.Errorf("PUT without a digest: %d, want 400", rec.Code)
	}
	if rec := do(srv, http.MethodPatch, "/v2/a/b/blobs/uploads/unknown", "", other); rec.Code != http.StatusNotFound {
		t.Errorf("PATCH of an unknown upload: %d, want 404", rec.Code)
	}
	for _, p := range []string{"/v2/a/b/blobs/sha256:nothex", "/v2/a/b/manifests/sha256:totallywrong"} {
		if rec := do(srv, http.MethodGet, p, "", nil); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "DIGEST_INVALID") {
			t.Errorf("GET %s: %d %s, want 400 DIGEST_INVALID", p, rec.Code, rec.Body)
		}
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/v2/_catalog", http.StatusOK},
		{http.MethodGet, "/v2/a/b/tags/list", http.StatusNotFound}, // the downstream has no a/b
		{http.MethodDelete, "/v2/a/b/manifests/v1", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/v2/a/b/blobs/" + d.String(), http.StatusMethodNotAllowed},
		{http.MethodGet, "/v2/a/b/manifests/v1", http.StatusNotFound},
		{http.MethodHead, "/v2/a/b/manifests/v1", http.StatusNotFound},
		{http.MethodGet, "/v2/a/b/manifests/.invalid", http.StatusNotFound},
		{http.MethodGet, "/other", http.StatusNotFound},
	} {
		if rec := do(srv, tc.method, tc.path, "", nil); rec.Code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
	}

	// Manifests: not JSON, naming blobs never pushed, pushed under
	// another digest: 400 with the spec's codes.
	img := newImage(t, 3, testregistry.ImageOptions{Layers: 1})
	for _, tc := range []struct {
		name, ref string
		body      []byte
		code      string
	}{
		{"not JSON", "v1", []byte("blablabla"), "MANIFEST_INVALID"},
		{"unknown blobs", "v1", img.Manifest, "MANIFEST_BLOB_UNKNOWN"},
		{"wrong digest", digest.FromString("x").String(), img.Manifest, "DIGEST_INVALID"},
	} {
		rec := do(srv, http.MethodPut, "/v2/a/b/manifests/"+tc.ref, img.MediaType, tc.body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.code) {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, rec.Code, rec.Body, tc.code)
		}
	}
	if st := srv.Stats(); st.PushFailed != 3 || st.Pushed != 0 {
		t.Errorf("stats %+v, want 3 failed pushes", st)
	}
}

// rewriting is a filter that changes layer content (never run here).
type rewriting struct{}

func (rewriting) Properties() stage.StageProperties {
	return stage.StageProperties{Name: "test-rewrite", ChangesContent: true}
}
func (rewriting) Run(ctx context.Context, in <-chan stage.Item, out chan<- stage.Item) error {
	for it := range in {
		if err := stage.Send(ctx, out, it); err != nil {
			return err
		}
	}
	return nil
}

// TestForwardAsPushed: an artifact (a config that is no image config) and
// an index go downstream byte for byte without a content-changing filter,
// and are refused naming the filter with one.
func TestForwardAsPushed(t *testing.T) {
	ctx := context.Background()
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	srv := newHandler(t, down, Options{})
	cfg := pushBlob(t, srv, "art", []byte("not json at all"))
	layer := pushBlob(t, srv, "art", []byte("payload"))
	artifact := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.example.thing","digest":%q,"size":15},`+
		`"layers":[{"mediaType":"application/vnd.example.payload","digest":%q,"size":7}]}`, cfg, layer))
	rec := do(srv, http.MethodPut, "/v2/art/manifests/v1", "application/vnd.oci.image.manifest.v1+json", artifact)
	if rec.Code != http.StatusCreated || rec.Header().Get("Docker-Content-Digest") != digest.FromBytes(artifact).String() {
		t.Fatalf("artifact: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	tr := newTransport(t)
	m, err := tr.Registry(down.Host, plain).GetManifest(ctx, "art", "v1", []string{"application/vnd.oci.image.manifest.v1+json"})
	if err != nil || !bytes.Equal(m.Body, artifact) {
		t.Fatalf("downstream artifact: %v %q", err, m.Body)
	}
	index := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",`+
		`"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}]}`,
		digest.FromBytes(artifact), len(artifact)))
	if rec := do(srv, http.MethodPut, "/v2/art/manifests/all", "application/vnd.oci.image.index.v1+json", index); rec.Code != http.StatusCreated {
		t.Fatalf("index: %d %s", rec.Code, rec.Body)
	}
	if rec := do(srv, http.MethodGet, "/v2/art/manifests/all", "", nil); rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), index) {
		t.Errorf("index through the proxy: %d %q", rec.Code, rec.Body)
	}
	// The tags list is the downstream's.
	if rec := do(srv, http.MethodGet, "/v2/art/tags/list", "", nil); rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"name":"art","tags":["all","v1"]}` {
		t.Errorf("tags list: %d %s", rec.Code, rec.Body)
	}

	filtered := newHandler(t, down, Options{Filters: func(stage.Image) ([]stage.Stage, error) {
		return []stage.Stage{rewriting{}}, nil
	}})
	pushBlob(t, filtered, "art", []byte("not json at all"))
	pushBlob(t, filtered, "art", []byte("payload"))
	for _, tc := range []struct {
		ref, mediaType string
		body           []byte
	}{{"v2", "application/vnd.oci.image.manifest.v1+json", artifact}, {"all2", "application/vnd.oci.image.index.v1+json", index}} {
		rec := do(filtered, http.MethodPut, "/v2/art/manifests/"+tc.ref, tc.mediaType, tc.body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "MANIFEST_INVALID") || !strings.Contains(rec.Body.String(), "test-rewrite") {
			t.Errorf("%s with a rewriting filter: %d %s, want 400 naming the filter", tc.ref, rec.Code, rec.Body)
		}
	}
}

// TestPushFailsDownstream: the downstream refuses, the push answers 500
// and nothing is cached.
func TestPushFailsDownstream(t *testing.T) {
	ctx := context.Background()
	origin := testregistry.Start(t, testregistry.Options{Plain: true})
	down := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				http.Error(w, "no", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	img := newImage(t, 9, testregistry.ImageOptions{Layers: 1})
	if err := origin.Push(ctx, "app", "v1", img); err != nil {
		t.Fatal(err)
	}
	host, stop := startProxy(t, Options{Downstream: down.Host})
	tr := newTransport(t)
	err := copyImage(ctx, tr, origin.Host, "app", "v1", host, "app", "v1")
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("push: %v, want a 500", err)
	}
	if _, err := tr.Registry(host, plain).GetManifest(ctx, "app", "v1", accept); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("manifest of a failed push: %v, want not found", err)
	}
	if st := stop(); st.PushFailed != 1 {
		t.Errorf("stats %+v, want 1 failed", st)
	}
}

func TestPullThrough(t *testing.T) {
	ctx := context.Background()
	var uc, dc counter
	up := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: uc.wrap})
	down := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: dc.wrap})
	img := newImage(t, 11, testregistry.ImageOptions{Layers: 3})
	if err := up.Push(ctx, "lib/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	host, stop := startProxy(t, Options{Downstream: down.Host + "/cache", Upstream: up.Host, Concurrency: 2})
	tr := newTransport(t)

	// Several clients at once: one pull from upstream.
	var failures atomic.Int64
	p := pool.New()
	for range 4 {
		p.Go(func() {
			m, err := tr.Registry(host, plain).GetManifest(ctx, "lib/app", "v1", accept)
			if err != nil || m.Digest != img.Digest {
				failures.Add(1)
			}
		})
	}
	p.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d concurrent pulls failed", failures.Load())
	}
	upManifests := uc.get("GET manifests")
	if upManifests != 1 || uc.get("GET blobs") != 4 {
		t.Errorf("upstream: %d manifest GETs, %d blob GETs, want 1 and 4", upManifests, uc.get("GET blobs"))
	}
	// Pull the whole image through the proxy: blobs stream from downstream.
	got, err := pulledDiffIDs(ctx, tr, host, "lib/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(diffIDs(img), got); diff != "" {
		t.Errorf("DiffIDs through the proxy (-want +got):\n%s", diff)
	}
	if uc.get("GET manifests") != upManifests || uc.get("GET blobs") != 4 {
		t.Errorf("second pull reached upstream: %v", uc.n)
	}
	// HEAD of blobs is asked of the downstream; unknown ones are 404.
	heads := dc.get("HEAD blobs")
	pr := tr.Registry(host, plain)
	if ok, _, err := pr.BlobExists(ctx, "lib/app", img.Layers[0].Digest); err != nil || !ok {
		t.Errorf("HEAD blob: %v %v", ok, err)
	}
	if ok, _, err := pr.BlobExists(ctx, "lib/app", digest.FromString("absent")); err != nil || ok {
		t.Errorf("HEAD of an absent blob: %v %v", ok, err)
	}
	if dc.get("HEAD blobs") != heads+2 {
		t.Errorf("downstream HEADs %d, want %d", dc.get("HEAD blobs"), heads+2)
	}
	// An image upstream lacks: 404.
	if _, err := pr.GetManifest(ctx, "lib/none", "v1", accept); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("absent image: %v, want not found", err)
	}
	st := stop()
	want := Stats{Pulled: 5, Hits: 4, Misses: 1, PullFailed: 1, UpstreamPulls: 1}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// TestShutdownWaits: a cancelled Serve lets a push in progress finish.
func TestShutdownWaits(t *testing.T) {
	ctx := context.Background()
	origin := testregistry.Start(t, testregistry.Options{Plain: true})
	entered := make(chan struct{})
	var once sync.Once
	down := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				once.Do(func() { close(entered) })
				time.Sleep(50 * time.Millisecond) // the shutdown starts meanwhile
			}
			h.ServeHTTP(w, r)
		})
	}})
	img := newImage(t, 5, testregistry.ImageOptions{Layers: 1})
	if err := origin.Push(ctx, "app", "v1", img); err != nil {
		t.Fatal(err)
	}
	host, stop := startProxy(t, Options{Downstream: down.Host})
	tr := newTransport(t)
	p := pool.New().WithErrors()
	p.Go(func() error { return copyImage(ctx, tr, origin.Host, "app", "v1", host, "app", "v1") })
	<-entered
	st := stop()
	if err := p.Wait(); err != nil {
		t.Errorf("push during shutdown: %v", err)
	}
	if st.Pushed != 1 {
		t.Errorf("stats %+v, want the push finished", st)
	}
	if _, err := tr.Registry(down.Host, plain).GetManifest(ctx, "app", "v1", accept); err != nil {
		t.Errorf("downstream after shutdown: %v", err)
	}
}

// TestDownstreamView: blobs a client skips because the proxy's HEAD
// found them downstream still make a valid push; tags lists and the
// catalog name the client's repositories, not the downstream's.
func TestDownstreamView(t *testing.T) {
	ctx := context.Background()
	origin := testregistry.Start(t, testregistry.Options{Plain: true})
	down := testregistry.Start(t, testregistry.Options{Plain: true})
	img := newImage(t, 31, testregistry.ImageOptions{Layers: 2})
	if err := origin.Push(ctx, "lib/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t)
	first, _ := startProxy(t, Options{Downstream: down.Host + "/mirror"})
	if err := copyImage(ctx, tr, origin.Host, "lib/app", "v1", first, "lib/app", "v1"); err != nil {
		t.Fatal(err)
	}
	// A second proxy holds no blob: every HEAD is answered from the
	// downstream, so the client uploads none and only pushes the manifest.
	var pc counter
	second, _ := startProxy(t, Options{Downstream: down.Host + "/mirror"})
	front := httptest.NewServer(pc.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+second+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})))
	t.Cleanup(front.Close)
	fh := strings.TrimPrefix(front.URL, "http://")
	if err := copyImage(ctx, tr, origin.Host, "lib/app", "v1", fh, "lib/app", "v2"); err != nil {
		t.Fatalf("push of blobs the downstream has: %v", err)
	}
	if n := pc.get("POST uploads") + pc.get("PATCH uploads") + pc.get("PUT uploads"); n != 0 {
		t.Errorf("%d upload requests, want none", n)
	}
	m, err := tr.Registry(down.Host, plain).GetManifest(ctx, "mirror/lib/app", "v2", accept)
	if err != nil || m.Digest != img.Digest {
		t.Fatalf("downstream v2: %v %s, want %s", err, m.Digest, img.Digest)
	}
	pr := tr.Registry(second, plain)
	for _, tc := range []struct{ path, want string }{
		{"/v2/lib/app/tags/list", `{"name":"lib/app","tags":["v1","v2"]}`},
		{"/v2/_catalog", `{"repositories":["lib/app"]}`},
	} {
		resp, err := pr.Do(ctx, transport.Request{Method: http.MethodGet, URL: pr.URL(tc.path)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != tc.want {
			t.Errorf("GET %s: %d %s, want %s", tc.path, resp.StatusCode, b, tc.want)
		}
	}
}

// TestFilteredPush: with a filter that rewrites layers the downstream gets
// another manifest; the proxy serves the one pushed, deletes the
// downstream's when asked to delete the pushed digest, and refuses a push
// by digest (the filtered image could not keep it).
func TestFilteredPush(t *testing.T) {
	ctx := context.Background()
	origin := testregistry.Start(t, testregistry.Options{Plain: true})
	down := testregistry.Start(t, testregistry.Options{Plain: true, Delete: true})
	img := newImage(t, 41, testregistry.ImageOptions{Layers: 2})
	if err := origin.Push(ctx, "app", "v1", img); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	host, _ := startProxy(t, Options{Downstream: down.Host, Filters: func(stage.Image) ([]stage.Stage, error) {
		return []stage.Stage{filter.NewNormalizeTimestamps(0, filter.Options{TempDir: tmp})}, nil
	}})
	tr := newTransport(t)
	if err := copyImage(ctx, tr, origin.Host, "app", "v1", host, "app", "v1"); err != nil {
		t.Fatal(err)
	}
	dm, err := tr.Registry(down.Host, plain).GetManifest(ctx, "app", "v1", accept)
	if err != nil {
		t.Fatal(err)
	}
	if dm.Digest == img.Digest {
		t.Fatalf("the filter left the manifest as pushed (%s)", dm.Digest)
	}
	pr := tr.Registry(host, plain)
	for _, ref := range []string{"v1", img.Digest.String()} {
		m, err := pr.GetManifest(ctx, "app", ref, accept)
		if err != nil || m.Digest != img.Digest {
			t.Errorf("proxy %s: %v %s, want the pushed %s", ref, err, m.Digest, img.Digest)
		}
	}
	// Layers the downstream holds already (pushed there directly): the
	// client skips them after the proxy's HEAD, and the filter reads them
	// from the downstream.
	if err := down.Push(ctx, "other", "v0", img); err != nil {
		t.Fatal(err)
	}
	if err := copyImage(ctx, tr, origin.Host, "app", "v1", host, "other", "v1"); err != nil {
		t.Fatalf("filtered push of blobs the downstream holds: %v", err)
	}
	if om, err := tr.Registry(down.Host, plain).GetManifest(ctx, "other", "v1", accept); err != nil || om.Digest != dm.Digest {
		t.Errorf("downstream other:v1: %v %s, want the filtered %s", err, om.Digest, dm.Digest)
	}
	// By digest: refused, naming the filter.
	resp, err := pr.Do(ctx, transport.Request{Method: http.MethodPut, URL: pr.URL("/v2/app/manifests/" + img.Digest.String()),
		Header: http.Header{"Content-Type": {img.MediaType}},
		Body:   func() (io.Reader, error) { return bytes.NewReader(img.Manifest), nil }, ContentLength: int64(len(img.Manifest))})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "normalize-timestamps") {
		t.Errorf("push by digest with a rewriting filter: %d %s", resp.StatusCode, b)
	}
	// DELETE of the pushed digest deletes the downstream's manifest.
	resp, err = pr.Do(ctx, transport.Request{Method: http.MethodDelete, URL: pr.URL("/v2/app/manifests/" + img.Digest.String())})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if _, err := tr.Registry(down.Host, plain).GetManifest(ctx, "app", dm.Digest.String(), accept); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("downstream manifest after DELETE: %v, want not found", err)
	}
	for _, ref := range []string{"v1", img.Digest.String()} {
		if _, err := pr.GetManifest(ctx, "app", ref, accept); !errors.Is(err, transport.ErrNotFound) {
			t.Errorf("proxy %s after DELETE: %v, want not found", ref, err)
		}
	}
}
