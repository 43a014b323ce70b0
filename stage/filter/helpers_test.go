package filter

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/tartest"
	"github.com/occystrap/occystrap/stage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// layerSpec is one layer of a test image.
type layerSpec struct {
	data []byte
	// file makes the body a FileBody (else an in-memory OpenerBody).
	file bool
	// skipped makes the layer skipped (no body).
	skipped bool
	name    string
}

// testImage is an image made in test code, with counted releases.
type testImage struct {
	config   []byte
	layers   []layerSpec
	released atomic.Int64
	bodies   int64
}

func (ti *testImage) diffIDs() []string {
	var ids []string
	for _, l := range ti.layers {
		ids = append(ids, "sha256:"+sha(l.data))
	}
	return ids
}

// source emits the config first, then the layers in order.
func (ti *testImage) source(t *testing.T) stage.Source {
	t.Helper()
	var items []stage.Item
	items = append(items, stage.Item{Seq: -1, Kind: stage.KindConfig, Name: sha(ti.config) + ".json", Data: ti.config})
	for i, l := range ti.layers {
		name := l.name
		if name == "" {
			name = fmt.Sprintf("layer%d", i)
		}
		it := stage.Item{Seq: i, Kind: stage.KindLayer, Name: name, DiffID: digest.Digest("sha256:" + sha(l.data)), Size: int64(len(l.data))}
		switch {
		case l.skipped:
		case l.file:
			p := filepath.Join(t.TempDir(), "layer.tar")
			if err := os.WriteFile(p, l.data, 0o644); err != nil {
				t.Fatal(err)
			}
			ti.bodies++
			it.Size = -1
			fb := &stage.FileBody{Path: p, Temp: true}
			it.Body = &stage.OpenerBody{OpenFunc: fb.Open, ReleaseFunc: func() error { ti.released.Add(1); return fb.Release() }}
		default:
			data := l.data
			ti.bodies++
			it.Body = &stage.OpenerBody{
				OpenFunc:    func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
				ReleaseFunc: func() error { ti.released.Add(1); return nil },
			}
		}
		items = append(items, it)
	}
	return sourceFunc(func(ctx context.Context, out chan<- stage.Item) error {
		for i, it := range items {
			if err := stage.Send(ctx, out, it); err != nil {
				// The source owns what it never sent.
				for _, rest := range items[i+1:] {
					_ = rest.Release()
				}
				return err
			}
		}
		return nil
	})
}

type sourceFunc func(ctx context.Context, out chan<- stage.Item) error

func (f sourceFunc) Properties() stage.SourceProperties { return stage.SourceProperties{} }

func (f sourceFunc) Emit(ctx context.Context, out chan<- stage.Item) error { return f(ctx, out) }

// got is what a collecting sink received: items in arrival order, layer
// contents by Seq.
type got struct {
	items    []stage.Item
	contents map[int][]byte
	config   stage.Item
	// configAfter is the number of layers received before the config.
	configAfter int
}

type collectSink struct {
	mu  sync.Mutex
	got got
}

func (s *collectSink) Properties() stage.SinkProperties { return stage.SinkProperties{} }

func (s *collectSink) Consume(ctx context.Context, in <-chan stage.Item) error {
	s.got.contents = map[int][]byte{}
	layers := 0
	for it := range in {
		if it.Kind == stage.KindConfig {
			s.got.config = it
			s.got.configAfter = layers
		} else {
			layers++
		}
		if it.Body != nil {
			rc, err := it.Body.Open()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			s.got.contents[it.Seq] = b
		}
		if err := it.Release(); err != nil {
			return err
		}
		s.mu.Lock()
		s.got.items = append(s.got.items, it)
		s.mu.Unlock()
	}
	return nil
}

func run(t *testing.T, ti *testImage, stages ...stage.Stage) (got, error) {
	t.Helper()
	sink := &collectSink{}
	_, err := stage.Run(context.Background(), ti.source(t), stages, sink, stage.Options{})
	return sink.got, err
}

func layerOf(g got, seq int) stage.Item {
	for _, it := range g.items {
		if it.Kind == stage.KindLayer && it.Seq == seq {
			return it
		}
	}
	return stage.Item{}
}

func list(t *testing.T, b []byte) []tartest.Member {
	t.Helper()
	ms, err := tartest.List(b)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("temp dir holds %d files after the run, want 0", len(ents))
	}
}

// simpleLayer is a small second layer.
func simpleLayer() []byte {
	return fixture.RawTar(fixture.Layer{
		fixture.Entry{Name: "app", Type: tar.TypeDir, Mode: 0o755, Mtime: time.Unix(1650000000, 0)},
		fixture.Entry{Name: "app/app.conf", Mode: 0o644, Mtime: time.Unix(1650000001, 0), Body: "k=v\n"},
		fixture.Entry{Name: "app/run", Mode: 0o755, Mtime: time.Unix(1650000002, 0), Body: "#!/bin/sh\n", PAX: [][2]string{{"mtime", "1650000002.123456789"}}},
	})
}

// configFor is an image config in the original's key order, with a
// non-ASCII string and a float, naming the given diff_ids.
func configFor(ids []string) []byte {
	q := func(s []string) string {
		var b bytes.Buffer
		for i, x := range s {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%q", x)
		}
		return b.String()
	}
	return []byte(`{"architecture":"amd64","config":{"Env":["PATH=/usr/bin"],"Labels":{"note":"café"},"Cmd":["/bin/sh"]},` +
		`"created":"2024-01-02T03:04:05.123456789Z","history":[` +
		`{"created":"2024-01-02T03:04:05Z","created_by":"ADD rootfs.tar /","comment":"base"},` +
		`{"created":"2024-01-02T03:04:06Z","created_by":"ENV X=1","empty_layer":true},` +
		`{"created":"2024-01-02T03:04:07.5Z","created_by":"COPY app /app"}],` +
		`"os":"linux","rootfs":{"type":"layers","diff_ids":[` + q(ids) + `]},"weight":1.50}`)
}

// pyConfig is configFor's document as json.dumps writes it.
func pyConfig(ids []string) string {
	var b bytes.Buffer
	for i, x := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", x)
	}
	return `{"architecture": "amd64", "config": {"Env": ["PATH=/usr/bin"], "Labels": {"note": "caf\u00e9"}, "Cmd": ["/bin/sh"]}, ` +
		`"created": "2024-01-02T03:04:05.123456789Z", "history": [` +
		`{"created": "2024-01-02T03:04:05Z", "created_by": "ADD rootfs.tar /", "comment": "base"}, ` +
		`{"created": "2024-01-02T03:04:06Z", "created_by": "ENV X=1", "empty_layer": true}, ` +
		`{"created": "2024-01-02T03:04:07.5Z", "created_by": "COPY app /app"}], ` +
		`"os": "linux", "rootfs": {"type": "layers", "diff_ids": [` + b.String() + `]}, "weight": 1.5}`
}

func newImage(layers ...layerSpec) *testImage {
	ti := &testImage{layers: layers}
	ti.config = configFor(ti.diffIDs())
	return ti
}

func itoa(n int) string { return fmt.Sprint(n) }

func objWith(t *testing.T, created string) *pyjson.Object {
	t.Helper()
	v, err := pyjson.Decode([]byte(`{"created": ` + created + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return v.(*pyjson.Object)
}
