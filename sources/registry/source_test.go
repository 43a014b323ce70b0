package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/testregistry"
	registrysrc "github.com/occystrap/occystrap/sources/registry"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The registry app's background workers and the HTTP servers'
		// idle connections outlive a test by design of those libraries.
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/notifications.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Queue).run"),
		goleak.IgnoreAnyFunction("github.com/docker/go-events.(*Broadcaster).run"),
		goleak.IgnoreAnyFunction("github.com/distribution/distribution/v3/registry/storage/driver/base.(*regulator).enter"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// got is what the collecting sink saw.
type got struct {
	ConfigName string
	Config     []byte
	Layers     []gotLayer // by Seq
}

type gotLayer struct {
	Seq     int
	Name    string
	DiffID  digest.Digest
	Size    int64
	Content digest.Digest // of the body as read
}

// collector is an in-test sink: it reads every layer body, checks nothing
// itself, and releases each item.
type collector struct {
	ordered bool

	mu      sync.Mutex
	res     got
	arrival []int
}

func (c *collector) Properties() stage.SinkProperties {
	return stage.SinkProperties{Ordered: c.ordered}
}

func (c *collector) Consume(ctx context.Context, in <-chan stage.Item) error {
	for it := range in {
		if it.Kind == stage.KindConfig {
			c.res.ConfigName, c.res.Config = it.Name, it.Data
			continue
		}
		rc, err := it.Body.Open()
		if err != nil {
			_ = it.Release()
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if rerr := it.Release(); err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.res.Layers = append(c.res.Layers, gotLayer{it.Seq, it.Name, it.DiffID, it.Size, digest.NewDigest(digest.SHA256, h)})
		c.arrival = append(c.arrival, it.Seq)
		c.mu.Unlock()
	}
	sort.Slice(c.res.Layers, func(i, j int) bool { return c.res.Layers[i].Seq < c.res.Layers[j].Seq })
	return nil
}

// want is what pulling img must give.
func want(img testregistry.Image) got {
	g := got{ConfigName: img.ConfigDigest.Encoded() + ".json", Config: img.Config}
	for i, l := range img.Layers {
		g.Layers = append(g.Layers, gotLayer{i, l.Digest.Encoded(), l.DiffID, int64(len(l.Tar)), l.DiffID})
	}
	return g
}

func newTransport(t testing.TB, reg *testregistry.Registry, mod func(*transport.Options)) *transport.Transport {
	t.Helper()
	o := transport.Options{
		RootCAs:      reg.RootCAs(),
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
		DockerConfig: t.TempDir(), // no config.json: no stray credentials
	}
	if mod != nil {
		mod(&o)
	}
	tr, err := transport.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

type pullOpts struct {
	repo, tag string
	workers   int
	ordered   bool
	platform  [3]string
	reg       transport.RegistryOptions
}

// pull runs the source into a collector, with a fresh temp dir it checks is
// left empty.
func pull(t testing.TB, tr *transport.Transport, reg *testregistry.Registry, o pullOpts) (got, []int, error) {
	t.Helper()
	tmp := t.TempDir()
	src := registrysrc.New(tr, registrysrc.Options{
		Host: reg.Host, Repo: o.repo, Tag: o.tag, Workers: o.workers, TempDir: tmp,
		OS: o.platform[0], Architecture: o.platform[1], Variant: o.platform[2], Registry: o.reg,
	})
	sink := &collector{ordered: o.ordered}
	_, err := stage.Run(context.Background(), src, nil, sink, stage.Options{Window: 4})
	left, rerr := os.ReadDir(tmp)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
	return sink.res, sink.arrival, err
}

func mustImage(t testing.TB, o testregistry.ImageOptions) testregistry.Image {
	t.Helper()
	img, err := testregistry.NewImage(o)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPull(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		reg     testregistry.Options
		img     testregistry.ImageOptions
		ropts   transport.RegistryOptions
		topts   func(*transport.Options)
		ordered bool
		workers int
	}{
		{name: "tls-h2-docker-gzip", img: testregistry.ImageOptions{Seed: 1, Layers: 5}},
		{name: "plain-insecure", reg: testregistry.Options{Plain: true}, ropts: transport.RegistryOptions{Insecure: true}, img: testregistry.ImageOptions{Seed: 2}},
		{name: "oci-zstd", img: testregistry.ImageOptions{Seed: 3, OCI: true, Compression: fixture.Zstd}},
		{name: "oci-uncompressed", img: testregistry.ImageOptions{Seed: 4, OCI: true, Compression: fixture.Uncompressed}},
		{name: "anonymous-token", reg: testregistry.Options{Auth: testregistry.AuthToken}, img: testregistry.ImageOptions{Seed: 5}},
		{name: "token-with-credentials", reg: testregistry.Options{Auth: testregistry.AuthToken, Username: "u", Password: "p"},
			ropts: transport.RegistryOptions{Username: "u", Password: "p"}, img: testregistry.ImageOptions{Seed: 6}},
		{name: "token-global-credentials", reg: testregistry.Options{Auth: testregistry.AuthToken, Username: "u", Password: "p"},
			topts: func(o *transport.Options) { o.Username, o.Password = "u", "p" }, img: testregistry.ImageOptions{Seed: 6}},
		{name: "basic", reg: testregistry.Options{Auth: testregistry.AuthBasic, Username: "u", Password: "p"},
			ropts: transport.RegistryOptions{Username: "u", Password: "p"}, img: testregistry.ImageOptions{Seed: 7}},
		{name: "ordered-one-worker", img: testregistry.ImageOptions{Seed: 8, Layers: 6}, ordered: true, workers: 1},
		{name: "ordered-many-workers", img: testregistry.ImageOptions{Seed: 9, Layers: 12, LayerSize: 8 << 10}, ordered: true, workers: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, tc.reg)
			img := mustImage(t, tc.img)
			if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			tr := newTransport(t, reg, tc.topts)
			res, arrival, err := pull(t, tr, reg, pullOpts{repo: "fixture/app", tag: "v1", workers: tc.workers, ordered: tc.ordered, reg: tc.ropts})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want(img), res); diff != "" {
				t.Errorf("pulled image differs (-want +got):\n%s", diff)
			}
			if tc.ordered && !sort.IntsAreSorted(arrival) {
				t.Errorf("ordered sink got layers in order %v", arrival)
			}
		})
	}
}

func TestPullManifestList(t *testing.T) {
	ctx := context.Background()
	for _, oci := range []bool{false, true} {
		t.Run(fmt.Sprintf("oci=%v", oci), func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, testregistry.Options{})
			amd := mustImage(t, testregistry.ImageOptions{Seed: 10, OCI: oci})
			arm := mustImage(t, testregistry.ImageOptions{Seed: 11, OCI: oci, Arch: "arm64", Variant: "v8"})
			if _, err := reg.PushIndex(ctx, "multi/app", "v1", oci, amd, arm); err != nil {
				t.Fatal(err)
			}
			tr := newTransport(t, reg, nil)
			tests := []struct {
				platform [3]string
				want     *testregistry.Image
			}{
				{[3]string{}, &amd},
				{[3]string{"linux", "arm64", "v8"}, &arm},
				{[3]string{"linux", "arm64", ""}, &arm}, // containerd's rule: arm64 is arm64/v8
				{[3]string{"linux", "aarch64", "8"}, &arm},
				{[3]string{"linux", "s390x", ""}, nil},
				{[3]string{"windows", "amd64", ""}, nil},
			}
			for _, c := range tests {
				res, _, err := pull(t, tr, reg, pullOpts{repo: "multi/app", tag: "v1", platform: c.platform})
				if c.want == nil {
					wantMsg := "Could not find a matching manifest for this os / architecture / variant: asked for " +
						c.platform[0] + "/" + c.platform[1] + "; the index has linux/amd64, linux/arm64/v8"
					if !errors.Is(err, registrysrc.ErrNoPlatform) || err.Error() != wantMsg {
						t.Errorf("%v: got error %v, want %q", c.platform, err, wantMsg)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%v: %v", c.platform, err)
				}
				if diff := cmp.Diff(want(*c.want), res); diff != "" {
					t.Errorf("%v: pulled image differs (-want +got):\n%s", c.platform, diff)
				}
			}
		})
	}
}

// rewriteContentType makes manifests come back with another media type.
func rewriteContentType(mt string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if testregistry.IsManifestGet(r) {
				w = &ctypeWriter{ResponseWriter: w, ct: mt}
			}
			next.ServeHTTP(w, r)
		})
	}
}

type ctypeWriter struct {
	http.ResponseWriter
	ct string
}

func (c *ctypeWriter) WriteHeader(code int) {
	c.Header().Set("Content-Type", c.ct)
	c.ResponseWriter.WriteHeader(code)
}

func (c *ctypeWriter) Write(b []byte) (int, error) {
	c.Header().Set("Content-Type", c.ct)
	return c.ResponseWriter.Write(b)
}

func TestPullErrors(t *testing.T) {
	ctx := context.Background()
	img := mustImage(t, testregistry.ImageOptions{Seed: 20})
	tests := []struct {
		name    string
		reg     testregistry.Options
		repo    string
		ropts   transport.RegistryOptions
		wantIs  error
		wantMsg string
	}{
		{name: "manifest-not-found", repo: "fixture/none", wantIs: transport.ErrNotFound, wantMsg: "404"},
		{name: "unknown-manifest-type", reg: testregistry.Options{Wrap: rewriteContentType("application/vnd.docker.distribution.manifest.v1+prettyjws")},
			repo: "fixture/app", wantIs: registrysrc.ErrManifestType, wantMsg: "Unknown manifest content type application/vnd.docker.distribution.manifest.v1+prettyjws!"},
		{name: "bad-credentials-token", reg: testregistry.Options{Auth: testregistry.AuthToken, Username: "u", Password: "p"},
			repo: "fixture/app", ropts: transport.RegistryOptions{Username: "u", Password: "wrong"}, wantIs: transport.ErrUnauthorized, wantMsg: "401"},
		{name: "bad-credentials-basic", reg: testregistry.Options{Auth: testregistry.AuthBasic, Username: "u", Password: "p"},
			repo: "fixture/app", ropts: transport.RegistryOptions{Username: "u", Password: "wrong"}, wantIs: transport.ErrUnauthorized, wantMsg: "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := testregistry.Start(t, tc.reg)
			if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			tr := newTransport(t, reg, nil)
			_, _, err := pull(t, tr, reg, pullOpts{repo: tc.repo, tag: "v1", reg: tc.ropts})
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("got error %v, want %v containing %q", err, tc.wantIs, tc.wantMsg)
			}
		})
	}
}

// TestPullWrongDiffID: a layer whose content does not match the config's
// DiffID fails the pull, and leaves no temporary file.
func TestPullWrongDiffID(t *testing.T) {
	ctx := context.Background()
	img := mustImage(t, testregistry.ImageOptions{Seed: 21, Layers: 3})
	var cfg v1.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.RootFS.DiffIDs[1] = digest.FromString("something else")
	img.Config, _ = json.Marshal(cfg)
	img.ConfigDigest = digest.FromBytes(img.Config)
	var m v1.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Config.Digest, m.Config.Size = img.ConfigDigest, int64(len(img.Config))
	img.Manifest, _ = json.Marshal(m)
	reg := testregistry.Start(t, testregistry.Options{})
	if err := reg.Push(ctx, "fixture/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	_, _, err := pull(t, newTransport(t, reg, nil), reg, pullOpts{repo: "fixture/app", tag: "v1"})
	if !errors.Is(err, registrysrc.ErrDiffID) || !strings.Contains(err.Error(), img.Layers[1].Digest.String()) {
		t.Fatalf("got %v, want a DiffID error naming layer 1", err)
	}
}
