package tarball

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/stage"
)

// rewriteTar copies an archive, dropping the members drop names and
// replacing the content of those in repl.
func rewriteTar(t testing.TB, in []byte, drop []string, repl map[string][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(in)), tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		skip := false
		for _, d := range drop {
			skip = skip || h.Name == d
		}
		if skip {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := repl[h.Name]; ok {
			b = r
			h.Size = int64(len(b))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func ociBytes(t testing.TB, c fixture.Compression) ([]byte, *fixture.Archive) {
	t.Helper()
	var buf bytes.Buffer
	a, err := fixture.WriteOCIArchive(&buf, testImage(), c)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), a
}

func saveBytes(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOCILayoutOnly: an OCI image layout with no manifest.json (skopeo's
// oci-archive:) is read from index.json; whole-archive gzip and zstd too.
func TestOCILayoutOnly(t *testing.T) {
	t.Parallel()
	raw, a := ociBytes(t, fixture.Gzip)
	layout := rewriteTar(t, raw, []string{"manifest.json", "repositories"}, nil)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layout)
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	for name, b := range map[string][]byte{"layout": layout, "layout.gz": gz.Bytes(), "layout.zst": enc.EncodeAll(layout, nil)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			src, err := OpenWith(saveBytes(t, b), Options{TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := src.Image(), (stage.Image{Name: "fixture/app", Tag: "v1"}); got != want {
				t.Errorf("Image() = %v, want %v", got, want)
			}
			items := emit(t, src)
			want := []itemView{{Seq: -1, Kind: stage.KindConfig, Name: a.ConfigPath, Size: int64(len(a.Config)), Data: string(a.Config)}}
			for i := range a.Layers {
				want = append(want, itemView{Seq: i, Kind: stage.KindLayer, Name: a.LayerNames[i], DiffID: a.DiffIDs[i], Size: -1, Body: true})
			}
			if d := cmp.Diff(want, view(items)); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
			got := readBodies(t, items)
			for i, l := range a.Layers {
				if !bytes.Equal(got[i], l) {
					t.Errorf("layer %d differs", i)
				}
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("%d files left in the temp dir after Close", len(left))
			}
		})
	}
}

// TestFlatLayoutNames: layers at the top of the archive (crane's and
// skopeo's flat layouts) are named by their DiffID's hex.
func TestFlatLayoutNames(t *testing.T) {
	t.Parallel()
	b := fixture.Build(testImage())
	var entries []fixture.Entry
	var paths []string
	for i, l := range b.Layers {
		blob, _, err := fixture.Compress(l, fixture.Gzip)
		if err != nil {
			t.Fatal(err)
		}
		p := string(rune('a'+i)) + ".tar.gz"
		if i%2 == 1 {
			blob, p = l, string(rune('a'+i))+".tar"
		}
		entries = append(entries, fixture.File(p, string(blob), 0o644))
		paths = append(paths, `"`+p+`"`)
	}
	entries = append(entries,
		fixture.File("sha256:"+b.ConfigDigest.Encoded(), string(b.Config), 0o644),
		fixture.File("manifest.json", `[{"Config":"sha256:`+b.ConfigDigest.Encoded()+`","RepoTags":["x/y:z"],"Layers":[`+strings.Join(paths, ",")+`]}]`, 0o644))
	src, err := Open(writeFile(t, oddArchive(entries...)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	items := emit(t, src)
	for i, it := range items[1:] {
		if it.Name != b.DiffIDs[i].Encoded() {
			t.Errorf("layer %d named %q, want its DiffID's hex", i, it.Name)
		}
	}
	got := readBodies(t, items)
	for i, l := range b.Layers {
		if !bytes.Equal(got[i], l) {
			t.Errorf("layer %d differs", i)
		}
	}
}

// TestDiffIDVerified: a layer whose sha256 is not the config's DiffID fails
// when read to its end, when a consumer stops at the tar's end and closes,
// and before a compressed blob is handed out as stored; Unchecked reads it.
func TestDiffIDVerified(t *testing.T) {
	t.Parallel()
	for _, c := range []fixture.Compression{fixture.Uncompressed, fixture.Gzip} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			raw, a := ociBytes(t, c)
			// Layer 1 gets one more zero block after its end: still a tar.
			bad := append(append([]byte(nil), a.Layers[1]...), make([]byte, 512)...)
			blob, _, err := fixture.Compress(bad, c)
			if err != nil {
				t.Fatal(err)
			}
			arch := rewriteTar(t, raw, nil, map[string][]byte{a.LayerPaths[1]: blob})
			src, err := Open(saveBytes(t, arch))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			items := emit(t, src)
			body := items[2].Body

			rc, err := body.Open()
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if !errors.Is(err, ErrDiffID) {
				t.Errorf("read to the end: %v, want ErrDiffID", err)
			}

			rc, err = body.Open()
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(rc)
			for {
				if _, err := tr.Next(); err != nil {
					break
				}
			}
			if err := rc.Close(); !errors.Is(err, ErrDiffID) {
				t.Errorf("Close after the tar's end: %v, want ErrDiffID", err)
			}

			if cb, ok := body.(stage.Compressed); ok {
				if _, _, err := cb.OpenCompressed(); !errors.Is(err, ErrDiffID) {
					t.Errorf("OpenCompressed: %v, want ErrDiffID", err)
				}
			}
			// A good layer reads fine, and its blob is handed out.
			if cb, ok := items[1].Body.(stage.Compressed); ok {
				rc, _, err := cb.OpenCompressed()
				if err != nil {
					t.Fatalf("OpenCompressed of a good layer: %v", err)
				}
				rc.Close()
			}

			items = emit(t, src.Unchecked())
			rc, err = items[2].Body.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || digest.FromBytes(b) != digest.FromBytes(bad) {
				t.Errorf("Unchecked: %v", err)
			}
		})
	}
}

// TestBadConfigRefused: Emit refuses a config that is not an image config
// before sending anything.
func TestBadConfigRefused(t *testing.T) {
	t.Parallel()
	raw, a := ociBytes(t, fixture.Uncompressed)
	for name, cfg := range map[string]string{
		"truncated":    string(a.Config[:len(a.Config)-3]),
		"wrong-type":   strings.Replace(string(a.Config), `"os":"linux"`, `"os":["linux"]`, 1),
		"rootfs-type":  strings.Replace(string(a.Config), `"type":"layers"`, `"type":"x"`, 1),
		"not-a-digest": strings.Replace(string(a.Config), `"diff_ids":["sha256:`, `"diff_ids":["md5:`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if cfg == string(a.Config) {
				t.Fatal("the config did not change")
			}
			arch := rewriteTar(t, raw, nil, map[string][]byte{a.ConfigPath: []byte(cfg)})
			src, err := Open(saveBytes(t, arch))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			out := make(chan stage.Item, 10)
			err = src.Emit(t.Context(), out)
			if !errors.Is(err, ErrBadConfig) || len(out) != 0 {
				t.Errorf("Emit: %v, %d items sent; want ErrBadConfig and none", err, len(out))
			}
		})
	}
}
