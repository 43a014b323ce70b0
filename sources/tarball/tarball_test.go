package tarball

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"github.com/sourcegraph/conc/pool"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/stage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		benchCleanup()
		os.Exit(code)
	}))
}

// writeFile writes an archive made by write into a temp file.
func writeFile(t testing.TB, write func(w io.Writer) error) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// emit runs src.Emit, as the engine would, and returns what it sent.
func emit(t testing.TB, src stage.Source) []stage.Item {
	t.Helper()
	ctx := context.Background()
	ch := make(chan stage.Item, 1)
	p := pool.New().WithErrors().WithContext(ctx)
	p.Go(func(ctx context.Context) error {
		defer close(ch)
		return src.Emit(ctx, ch)
	})
	var items []stage.Item
	for it := range ch {
		items = append(items, it)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Emit: %v", err)
	}
	return items
}

// readBodies opens every layer body at once and reads them in parallel; it
// returns each layer's bytes by Seq.
func readBodies(t testing.TB, items []stage.Item) map[int][]byte {
	t.Helper()
	rcs := map[int]io.ReadCloser{}
	for _, it := range items {
		if it.Kind != stage.KindLayer {
			continue
		}
		rc, err := it.Body.Open()
		if err != nil {
			t.Fatalf("open layer %d: %v", it.Seq, err)
		}
		rcs[it.Seq] = rc
	}
	out := make([][]byte, len(items))
	p := pool.New().WithErrors()
	for seq, rc := range rcs {
		p.Go(func() error {
			defer rc.Close()
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, rc); err != nil {
				return fmt.Errorf("read layer %d: %w", seq, err)
			}
			out[seq] = buf.Bytes()
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	got := map[int][]byte{}
	for seq := range rcs {
		got[seq] = out[seq]
	}
	return got
}

func testImage() fixture.Image {
	base := fixture.Layer{fixture.Dir("bin", 0o755), fixture.File("bin/sh", "#!/bin/sh\n", 0o755)}
	return fixture.Image{Name: "fixture/app", Tag: "v1", Layers: []fixture.Layer{
		base,
		{fixture.RandomFile("opt/app/data", 300<<10, 1), fixture.Whiteout("opt/app/old.conf")},
		base, // repeated: a symlink in the legacy layout, a repeated blob in the OCI one
		{fixture.File(strings.Repeat("long/", 40)+"name", "x", 0o644).WithXattr("user.a", "b")},
	}}
}

type itemView struct {
	Seq    int
	Kind   stage.Kind
	Name   string
	DiffID digest.Digest
	Size   int64
	Data   string
	Body   bool
}

func view(items []stage.Item) []itemView {
	var v []itemView
	for _, it := range items {
		v = append(v, itemView{it.Seq, it.Kind, it.Name, it.DiffID, it.Size, string(it.Data), it.Body != nil})
	}
	return v
}

func TestEmit(t *testing.T) {
	t.Parallel()
	img := testImage()
	tests := []struct {
		name  string
		write func(w io.Writer) (*fixture.Archive, error)
		comp  bool
	}{
		{"legacy", func(w io.Writer) (*fixture.Archive, error) { return fixture.WriteLegacyArchive(w, img) }, false},
		{"oci", func(w io.Writer) (*fixture.Archive, error) {
			return fixture.WriteOCIArchive(w, img, fixture.Uncompressed)
		}, false},
		{"oci-gzip", func(w io.Writer) (*fixture.Archive, error) { return fixture.WriteOCIArchive(w, img, fixture.Gzip) }, true},
		{"oci-zstd", func(w io.Writer) (*fixture.Archive, error) { return fixture.WriteOCIArchive(w, img, fixture.Zstd) }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var a *fixture.Archive
			p := writeFile(t, func(w io.Writer) (err error) { a, err = tc.write(w); return err })
			src, err := Open(p)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer src.Close()
			if got, want := src.Image(), (stage.Image{Name: "fixture/app", Tag: "v1"}); got != want {
				t.Errorf("Image() = %v, want %v", got, want)
			}
			want := []itemView{{Seq: -1, Kind: stage.KindConfig, Name: a.ConfigPath, Size: int64(len(a.Config)), Data: string(a.Config)}}
			for i := range a.Layers {
				size := int64(len(a.Layers[i]))
				if tc.comp {
					size = -1
				}
				want = append(want, itemView{Seq: i, Kind: stage.KindLayer, Name: a.LayerNames[i], DiffID: a.DiffIDs[i], Size: size, Body: true})
			}
			items := emit(t, src)
			if d := cmp.Diff(want, view(items)); d != "" {
				t.Fatalf("items (-want +got):\n%s", d)
			}
			got := readBodies(t, items)
			for i, l := range a.Layers {
				if !bytes.Equal(got[i], l) {
					t.Errorf("layer %d: body gives %d bytes that differ from the layer tar (%d bytes)", i, len(got[i]), len(l))
				}
			}
			// A second round of opens gives the same bytes again.
			if d := cmp.Diff(got, readBodies(t, items)); d != "" {
				t.Errorf("bodies differ when re-opened")
			}
			for _, it := range items[1:] {
				c, ok := it.Body.(stage.Compressed)
				if ok != tc.comp {
					t.Fatalf("layer %d: stage.Compressed = %v, want %v", it.Seq, ok, tc.comp)
				}
				if !ok {
					continue
				}
				rc, mt, err := c.OpenCompressed()
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(b, a.Blobs[it.Seq]) || !strings.HasPrefix(mt, "application/vnd.oci.image.layer.v1.tar+") {
					t.Errorf("layer %d: OpenCompressed gave %d bytes, media type %q, err %v; want the stored blob", it.Seq, len(b), mt, err)
				}
			}
		})
	}
}

// TestCopyToFile goes through the copy_file_range path (io.Copy into an
// *os.File) and through plain reads, and checks both give the layer bytes.
func TestCopyToFile(t *testing.T) {
	t.Parallel()
	var a *fixture.Archive
	p := writeFile(t, func(w io.Writer) (err error) { a, err = fixture.WriteLegacyArchive(w, testImage()); return err })
	src, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, it := range emit(t, src)[1:] {
		rc, err := it.Body.Open()
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "layer.tar")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, rc); err != nil {
			t.Fatal(err)
		}
		f.Close()
		rc.Close()
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, a.Layers[it.Seq]) {
			t.Errorf("layer %d: copied file differs from the layer tar", it.Seq)
		}
	}
}

// oddArchive is a plain tar of members, for archives docker would not write.
func oddArchive(entries ...fixture.Entry) func(w io.Writer) error {
	return func(w io.Writer) error { return fixture.WriteTar(w, entries) }
}

func TestLinkedMembers(t *testing.T) {
	t.Parallel()
	layer := fixture.LayerTar(fixture.Layer{fixture.File("etc/hosts", "h", 0o644)})
	cfg := `{"rootfs":{"type":"layers","diff_ids":["` + fixture.DiffID(layer).String() + `","` + fixture.DiffID(layer).String() + `"]}}`
	manifest := func(a, b string) fixture.Entry {
		return fixture.File("manifest.json", `[{"Config":"c.json","RepoTags":["app:1"],"Layers":["`+a+`","`+b+`"]}]`, 0o644)
	}
	tests := []struct {
		name    string
		entries []fixture.Entry
	}{
		{"relative symlink", []fixture.Entry{
			fixture.File("a/layer.tar", string(layer), 0o644), fixture.Symlink("b/layer.tar", "../a/layer.tar"),
			fixture.File("c.json", cfg, 0o644), manifest("a/layer.tar", "b/layer.tar")}},
		{"symlink to a sibling", []fixture.Entry{
			fixture.File("real.tar", "decoy", 0o644), fixture.File("b/real.tar", string(layer), 0o644),
			fixture.Symlink("a/layer.tar", "../b/real.tar"), fixture.Symlink("b/layer.tar", "real.tar"),
			fixture.File("c.json", cfg, 0o644), manifest("a/layer.tar", "b/layer.tar")}},
		{"absolute symlink", []fixture.Entry{
			fixture.File("a/layer.tar", string(layer), 0o644), fixture.Symlink("b/layer.tar", "/a/layer.tar"),
			fixture.File("c.json", cfg, 0o644), manifest("a/layer.tar", "b/layer.tar")}},
		{"hard link", []fixture.Entry{
			fixture.File("a/layer.tar", string(layer), 0o644), fixture.Hardlink("b/layer.tar", "a/layer.tar"),
			fixture.File("c.json", cfg, 0o644), manifest("a/layer.tar", "b/layer.tar")}},
		{"symlink to blob, dot-slash names", []fixture.Entry{
			fixture.File("./blobs/sha256/x", string(layer), 0o644), fixture.Symlink("./b/layer.tar", "../blobs/sha256/x"),
			fixture.File("./c.json", cfg, 0o644), manifest("b/layer.tar", "blobs/sha256/x")}},
		{"chain of links", []fixture.Entry{
			fixture.File("a/layer.tar", string(layer), 0o644), fixture.Symlink("b/layer.tar", "../c/layer.tar"),
			fixture.Hardlink("c/layer.tar", "d/layer.tar"), fixture.Symlink("d/layer.tar", "../a/layer.tar"),
			fixture.File("c.json", cfg, 0o644), manifest("a/layer.tar", "b/layer.tar")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := Open(writeFile(t, oddArchive(tc.entries...)))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer src.Close()
			items := emit(t, src)
			if len(items) != 3 || items[0].Name != "c.json" || items[1].DiffID != fixture.DiffID(layer) {
				t.Fatalf("items = %+v", view(items))
			}
			for seq, b := range readBodies(t, items) {
				if !bytes.Equal(b, layer) {
					t.Errorf("layer %d (%s) differs from the layer tar", seq, items[seq+1].Name)
				}
			}
		})
	}
}

func TestImageName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		repoTags string
		want     stage.Image
	}{
		{`"RepoTags":["quay.io/org/app:2025.1","other:x"],`, stage.Image{Name: "quay.io/org/app", Tag: "2025.1"}},
		{`"RepoTags":["app"],`, stage.Image{Name: "app", Tag: "latest"}},
		{`"RepoTags":["localhost:5000/app"],`, stage.Image{Name: "localhost", Tag: "5000/app"}}, // split at the last ':', as the original
		{`"RepoTags":[],`, stage.Image{Name: "unknown", Tag: "unknown"}},
		{`"RepoTags":null,`, stage.Image{Name: "unknown", Tag: "unknown"}},
		{``, stage.Image{Name: "unknown", Tag: "unknown"}},
	}
	for _, tc := range tests {
		t.Run(tc.repoTags, func(t *testing.T) {
			t.Parallel()
			src, err := Open(writeFile(t, oddArchive(
				fixture.File("c.json", "{}", 0o644),
				fixture.File("manifest.json", `[{"Config":"c.json",`+tc.repoTags+`"Layers":[]}]`, 0o644))))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if got := src.Image(); got != tc.want {
				t.Errorf("Image() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRepoTagsAbsentFromFixture(t *testing.T) {
	t.Parallel()
	img := testImage()
	img.Name = ""
	var a *fixture.Archive
	src, err := Open(writeFile(t, func(w io.Writer) (err error) { a, err = fixture.WriteLegacyArchive(w, img); return err }))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got, want := src.Image(), (stage.Image{Name: "unknown", Tag: "unknown"}); got != want {
		t.Errorf("Image() = %v, want %v", got, want)
	}
	if items := emit(t, src); len(items) != len(a.Layers)+1 {
		t.Errorf("%d items, want %d", len(items), len(a.Layers)+1)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	var full bytes.Buffer
	big := fixture.Image{Name: "a", Tag: "b", Layers: []fixture.Layer{{fixture.RandomFile("big", 1<<20, 3)}}}
	if _, err := fixture.WriteLegacyArchive(&full, big); err != nil {
		t.Fatal(err)
	}
	cfg := fixture.File("c.json", "{}", 0o644)
	tests := []struct {
		name    string
		write   func(w io.Writer) error
		want    error
		wantMsg []string // substrings of the message
	}{
		{"repositories only", oddArchive(fixture.File("repositories", `{"a":{"b":"x"}}`, 0o644), fixture.File("x/layer.tar", "", 0o644)),
			ErrLegacyFormat, []string{"legacy Docker format", "docker load < old.tar && docker save image:tag > new.tar"}},
		{"no manifest", oddArchive(fixture.File("x/layer.tar", "", 0o644)),
			ErrNoManifest, []string{"Invalid tarball: no manifest.json found."}},
		{"empty file", func(io.Writer) error { return nil }, ErrNoManifest, nil},
		{"truncated", func(w io.Writer) error { _, err := w.Write(full.Bytes()[:full.Len()/2]); return err },
			ErrTruncated, []string{"layer.tar"}},
		{"truncated in a header", func(w io.Writer) error { _, err := w.Write(full.Bytes()[:100]); return err },
			ErrTruncated, nil},
		{"manifest not json", oddArchive(cfg, fixture.File("manifest.json", "{", 0o644)), ErrBadManifest, []string{"manifest.json"}},
		{"manifest empty list", oddArchive(cfg, fixture.File("manifest.json", "[]", 0o644)), ErrBadManifest, []string{"manifest.json"}},
		{"manifest without config", oddArchive(cfg, fixture.File("manifest.json", `[{"Layers":[]}]`, 0o644)), ErrBadManifest, nil},
		{"config missing", oddArchive(fixture.File("manifest.json", `[{"Config":"nope.json","Layers":[]}]`, 0o644)),
			ErrMissingMember, []string{"nope.json"}},
		{"layer missing", oddArchive(cfg, fixture.File("manifest.json", `[{"Config":"c.json","Layers":["abc/layer.tar"]}]`, 0o644)),
			ErrMissingMember, []string{"abc/layer.tar"}},
		{"member size past the end", func(w io.Writer) error {
			// A header claiming 8 GiB (and, in base-256, up to 2^63-1)
			// followed by nothing.
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "x/layer.tar", Size: 1<<63 - 1, Mode: 0o644}); err != nil {
				return err
			}
			_, err := w.Write(b.Bytes())
			return err
		}, ErrTruncated, []string{"x/layer.tar"}},
		{"symlink loop", oddArchive(cfg, fixture.Symlink("a/layer.tar", "../b/layer.tar"), fixture.Symlink("b/layer.tar", "../a/layer.tar"),
			fixture.File("manifest.json", `[{"Config":"c.json","Layers":["a/layer.tar"]}]`, 0o644)),
			ErrMissingMember, []string{"a/layer.tar", "links"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, tc.write)
			src, err := Open(p)
			if err == nil {
				src.Close()
				t.Fatalf("Open succeeded, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %q", err, tc.want)
			}
			for _, s := range append([]string{p}, tc.wantMsg...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.tar")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want ErrNotExist", err)
	}
}

// TestShrunkAfterOpen: an archive cut short after it was indexed gives a
// read error naming the member, not a short layer.
func TestShrunkAfterOpen(t *testing.T) {
	t.Parallel()
	img := fixture.Image{Name: "a", Tag: "b", Layers: []fixture.Layer{{fixture.RandomFile("big", 1<<20, 3)}}}
	for _, c := range []fixture.Compression{fixture.Uncompressed, fixture.Gzip, fixture.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			var a *fixture.Archive
			p := writeFile(t, func(w io.Writer) (err error) { a, err = fixture.WriteOCIArchive(w, img, c); return err })
			src, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			items := emit(t, src)
			if err := os.Truncate(p, 600<<10); err != nil {
				t.Fatal(err)
			}
			for _, dst := range []string{"buffer", "file"} {
				rc, err := items[1].Body.Open()
				if err != nil {
					t.Fatal(err)
				}
				var w io.Writer = &bytes.Buffer{}
				if dst == "file" {
					f, err := os.Create(filepath.Join(t.TempDir(), "out"))
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					w = f
				}
				_, err = io.Copy(w, rc)
				rc.Close()
				if err == nil || !strings.Contains(err.Error(), a.LayerPaths[0]) {
					t.Errorf("copy to %s: error %v, want one naming %s", dst, err, a.LayerPaths[0])
				}
				if c == fixture.Uncompressed && !errors.Is(err, ErrTruncated) {
					t.Errorf("copy to %s: error %v is not ErrTruncated", dst, err)
				}
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	img := fixture.Image{Name: "a/b", Tag: "c", Layers: []fixture.Layer{{fixture.File("f", "x", 0o644)}, {fixture.Symlink("l", "f")}}}
	for _, w := range []func(io.Writer) error{
		func(w io.Writer) error { _, err := fixture.WriteLegacyArchive(w, img); return err },
		func(w io.Writer) error { _, err := fixture.WriteOCIArchive(w, img, fixture.Gzip); return err },
		func(w io.Writer) error { _, err := fixture.WriteOCIArchive(w, img, fixture.Zstd); return err },
		oddArchive(fixture.File("repositories", "{}", 0o644)),
		oddArchive(fixture.File("c", "{}", 0o644), fixture.Symlink("manifest.json", "m"),
			fixture.File("m", `[{"Config":"c","Layers":["c"]}]`, 0o644)),
	} {
		var buf bytes.Buffer
		if err := w(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	// An OCI image layout with no manifest.json, compressed as a whole too.
	raw, _ := ociBytes(f, fixture.Gzip)
	layout := rewriteTar(f, raw, []string{"manifest.json", "repositories"}, nil)
	f.Add(layout)
	gz, _, err := fixture.Compress(layout, fixture.Gzip)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gz)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := open(bytes.NewReader(data), int64(len(data)), "fuzz.tar")
		if err != nil {
			return
		}
		out := make(chan stage.Item, len(src.layers)+1)
		if err := src.Emit(context.Background(), out); err != nil {
			if errors.Is(err, ErrBadConfig) {
				return
			}
			t.Fatalf("Emit: %v", err)
		}
		close(out)
		for it := range out {
			if it.Kind != stage.KindLayer {
				continue
			}
			rc, err := it.Body.Open()
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
			rc.Close()
		}
	})
}

// The benchmark archives are built once per process, in a temp directory
// that TestMain removes.
var bench struct {
	dir   string
	paths map[string]string
	sizes map[string]int64
}

func benchCleanup() {
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
}

func benchArchive(b *testing.B, kind string) (string, int64) {
	b.Helper()
	if p, ok := bench.paths[kind]; ok {
		return p, bench.sizes[kind]
	}
	if bench.dir == "" {
		d, err := os.MkdirTemp("", "tarball-bench")
		if err != nil {
			b.Fatal(err)
		}
		bench.dir, bench.paths, bench.sizes = d, map[string]string{}, map[string]int64{}
	}
	// Four layers of 25 MiB of incompressible data: about 100 MiB.
	img := fixture.Image{Name: "bench/app", Tag: "v1"}
	for i := range 4 {
		img.Layers = append(img.Layers, fixture.Layer{fixture.RandomFile(fmt.Sprintf("data%d", i), 25<<20, uint64(i))})
	}
	p := filepath.Join(bench.dir, kind+".tar")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	var a *fixture.Archive
	switch kind {
	case "legacy":
		a, err = fixture.WriteLegacyArchive(f, img)
	case "oci-gzip":
		a, err = fixture.WriteOCIArchive(f, img, fixture.Gzip)
	case "oci-zstd":
		a, err = fixture.WriteOCIArchive(f, img, fixture.Zstd)
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, l := range a.Layers {
		total += int64(len(l))
	}
	bench.paths[kind], bench.sizes[kind] = p, total
	return p, total
}

// BenchmarkEmitAndRead opens a ~100 MiB archive, emits its items and reads
// every layer body in parallel (one goroutine per layer), into io.Discard or
// through sha256 as a sink verifying DiffIDs would. Bytes are uncompressed
// layer bytes.
func BenchmarkEmitAndRead(b *testing.B) {
	for _, kind := range []string{"legacy", "oci-gzip", "oci-zstd"} {
		for _, sink := range []string{"discard", "sha256"} {
			b.Run(kind+"/"+sink, func(b *testing.B) {
				p, total := benchArchive(b, kind)
				b.SetBytes(total)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					src, err := Open(p)
					if err != nil {
						b.Fatal(err)
					}
					items := emit(b, src)
					pl := pool.New().WithErrors()
					for _, it := range items[1:] {
						pl.Go(func() error {
							rc, err := it.Body.Open()
							if err != nil {
								return err
							}
							defer rc.Close()
							var w io.Writer = struct{ io.Writer }{io.Discard}
							h := sha256.New()
							if sink == "sha256" {
								w = h
							}
							if _, err := io.Copy(w, rc); err != nil {
								return err
							}
							if sink == "sha256" && digest.NewDigest(digest.SHA256, h) != it.DiffID {
								return fmt.Errorf("layer %d: DiffID mismatch", it.Seq)
							}
							return nil
						})
					}
					if err := pl.Wait(); err != nil {
						b.Fatal(err)
					}
					src.Close()
				}
			})
		}
	}
}
