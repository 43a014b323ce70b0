package imageinfo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/filter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "N/A"}, {int64(42), "42 B"}, {int64(2048), "2.0 KB"}, {int64(5 << 20), "5.0 MB"},
		{int64(2 << 30), "2.0 GB"}, {int64(1023), "1023 B"}, {int64(1536), "1.5 KB"},
	} {
		if got := FormatSize(tc.in); got != tc.want {
			t.Errorf("FormatSize(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

const (
	dockerManifest = `{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
 "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1234, "digest": "sha256:cfcf"},
 "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1000, "digest": "sha256:a0a0"}]}`
	goodConfig = `{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:d0d0"]},
 "history": [{"created_by": "/bin/sh -c echo layer0"}, {"created_by": "ENV", "empty_layer": true}], "config": {"Cmd": ["/bin/sh"]}}`
)

func meta(t *testing.T, man, cfg string) Meta {
	t.Helper()
	var mb, cb []byte
	if man != "" {
		mb = []byte(man)
	}
	if cfg != "" {
		cb = []byte(cfg)
	}
	m, err := ParseMeta("img", "v1", mb, cb)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// find returns the results with id.
func find(r Results, id string) Results {
	var out Results
	for _, x := range r {
		if x.Check == id {
			out = append(out, x)
		}
	}
	return out
}

func TestCheckMetadata(t *testing.T) {
	for _, tc := range []struct {
		name, man, cfg string
		id             string
		want           Results
	}{
		{"metadata", "", "", "metadata", Results{{SeverityWarning, "metadata", "No manifest or config available; metadata checks skipped"}}},
		{"schema-ok", dockerManifest, goodConfig, "schema-version", Results{{SeverityInfo, "schema-version", "Manifest schemaVersion is 2"}}},
		{"schema-bad", strings.Replace(dockerManifest, `"schemaVersion": 2`, `"schemaVersion": 1`, 1), goodConfig, "schema-version",
			Results{{SeverityError, "schema-version", "Manifest schemaVersion is 1, expected 2"}}},
		{"schema-missing", strings.Replace(dockerManifest, `"schemaVersion": 2,`, ``, 1), goodConfig, "schema-version",
			Results{{SeverityError, "schema-version", "Manifest schemaVersion is None, expected 2"}}},
		{"rootfs-type", "", strings.Replace(goodConfig, `"type": "layers"`, `"type": "squash"`, 1), "rootfs-type",
			Results{{SeverityError, "rootfs-type", `Config rootfs.type is 'squash', expected "layers"`}}},
		{"rootfs-type-ok", "", goodConfig, "rootfs-type", Results{{SeverityInfo, "rootfs-type", `Config rootfs.type is "layers"`}}},
		{"layer-count", dockerManifest, strings.Replace(goodConfig, `["sha256:d0d0"]`, `["sha256:d0d0", "sha256:d1d1"]`, 1), "layer-count",
			Results{{SeverityError, "layer-count", "Manifest has 1 layers but config has 2 diff_ids"}}},
		{"layer-count-ok", dockerManifest, goodConfig, "layer-count", Results{{SeverityInfo, "layer-count", "Layer count matches: 1 layers, 1 diff_ids"}}},
		{"config-descriptor", strings.Replace(dockerManifest, `"digest": "sha256:cfcf"`, `"digest": ""`, 1), goodConfig, "config-descriptor",
			Results{{SeverityError, "config-descriptor", "Manifest has no config descriptor"}}},
		{"config-descriptor-ok", dockerManifest, goodConfig, "config-descriptor",
			Results{{SeverityInfo, "config-descriptor", "Config descriptor present (digest: sha256:cfcf, size: 1234)"}}},
		{"history-count", dockerManifest, strings.Replace(goodConfig, `"empty_layer": true`, `"empty_layer": false`, 1), "history-count",
			Results{{SeverityError, "history-count", "History has 2 non-empty entries but image has 1 layers"}}},
		{"history-none", "", strings.Replace(goodConfig, `"history"`, `"nohistory"`, 1), "history-count",
			Results{{SeverityInfo, "history-count", "No history entries present"}}},
		{"zstd-compat", strings.Replace(dockerManifest, "tar.gzip", "tar.zstd", 1), goodConfig, "zstd-compat",
			Results{{SeverityWarning, "zstd-compat", "1 layer(s) use zstd compression; Docker Engine < 20.10 and containerd < 1.5 cannot pull this image"}}},
		{"large-layer", strings.Replace(dockerManifest, `"size": 1000`, `"size": 2147483648`, 1), goodConfig, "large-layer",
			Results{{SeverityWarning, "large-layer", "Layer 0 is very large: 2.0 GB compressed"}}},
		{"args-escaped", dockerManifest, strings.Replace(goodConfig, `"Cmd"`, `"ArgsEscaped": true, "Cmd"`, 1), "args-escaped",
			Results{{SeverityWarning, "args-escaped", "config.ArgsEscaped is set (Docker-specific, deprecated in OCI spec)"}}},
		{"oci-media-type", strings.Replace(dockerManifest, "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json", 1), goodConfig, "oci-media-type",
			Results{{SeverityInfo, "oci-media-type", "Image uses OCI media types; older Docker versions may not handle this correctly"}}},
		{"docker-media-type", dockerManifest, goodConfig, "docker-media-type",
			Results{{SeverityInfo, "docker-media-type", "Image uses Docker v2 media types; some OCI-only tooling may not handle this"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := find(CheckMetadata(meta(t, tc.man, tc.cfg)), tc.id)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// runLayers runs a full check of the given layer tars and config bytes.
func runLayers(t *testing.T, m Meta, cfg []byte, layers [][]byte, openErr bool) Results {
	t.Helper()
	items := []stage.Item{{Seq: -1, Kind: stage.KindConfig, Name: "c.json", Size: -1, Data: cfg}}
	for i, l := range layers {
		body := &stage.OpenerBody{OpenFunc: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil }}
		if openErr {
			body.OpenFunc = func() (io.ReadCloser, error) { return nil, fmt.Errorf("gone") }
		}
		items = append(items, stage.Item{Seq: i, Kind: stage.KindLayer, Name: fmt.Sprint(i), Size: int64(len(l)), Body: body})
	}
	lc := NewLayerCheck(m, 3)
	if _, err := stage.Run(context.Background(), &ItemSource{Items: items}, []stage.Stage{lc}, filter.Discard{}, stage.Options{}); err != nil {
		t.Fatal(err)
	}
	return lc.Results()
}

func TestLayerChecks(t *testing.T) {
	build := func(ls ...fixture.Layer) ([]byte, [][]byte, []string) {
		var tars [][]byte
		var ids []string
		for _, l := range ls {
			b := fixture.LayerTar(l)
			tars = append(tars, b)
			ids = append(ids, `"`+fixture.DiffID(b).String()+`"`)
		}
		cfg := `{"rootfs": {"type": "layers", "diff_ids": [` + strings.Join(ids, ", ") + `]}}`
		return []byte(cfg), tars, ids
	}
	manifestFor := func(cfg []byte, digestOverride string, size int) string {
		d := fmt.Sprintf("sha256:%x", sha(cfg))
		if digestOverride != "" {
			d = digestOverride
		}
		return fmt.Sprintf(`{"schemaVersion": 2, "config": {"digest": %q, "size": %d}, "layers": [{"size": 1, "digest": "sha256:00"}]}`, d, size)
	}
	many := fixture.Layer{}
	for i := range 12 {
		many = append(many, fixture.File(fmt.Sprintf("f%02d", i), "x", 0o644))
	}
	for _, tc := range []struct {
		name    string
		layers  []fixture.Layer
		raw     [][]byte // instead of layers
		man     func(cfg []byte) string
		badCfg  bool // config diff_ids wrong
		openErr bool
		id      string
		want    []string // "severity message"
	}{
		{name: "config-digest-ok", layers: []fixture.Layer{{fixture.File("a", "x", 0o644)}},
			man: func(c []byte) string { return manifestFor(c, "", len(c)) }, id: "config-digest", want: []string{"info Config digest verified: sha256:"}},
		{name: "config-digest-bad", layers: []fixture.Layer{{fixture.File("a", "x", 0o644)}},
			man: func(c []byte) string { return manifestFor(c, "sha256:beef", len(c)) }, id: "config-digest", want: []string{"error Config digest mismatch: expected sha256:beef, got sha256:"}},
		{name: "config-size-bad", layers: []fixture.Layer{{fixture.File("a", "x", 0o644)}},
			man: func(c []byte) string { return manifestFor(c, "", 7) }, id: "config-size", want: []string{"error Config size mismatch: expected 7, got "}},
		{name: "config-size-ok", layers: []fixture.Layer{{fixture.File("a", "x", 0o644)}},
			man: func(c []byte) string { return manifestFor(c, "", len(c)) }, id: "config-size", want: []string{"info Config size verified: "}},
		{name: "diff-id-ok", layers: []fixture.Layer{{fixture.File("a", "x", 0o644)}}, id: "diff-id", want: []string{"info Layer 0 diff_id verified"}},
		{name: "diff-id-bad", layers: []fixture.Layer{{fixture.File("a", "x", 0o644)}}, badCfg: true, id: "diff-id",
			want: []string{"error Layer 0 diff_id mismatch: expected sha256:000000000000000000..., got sha256:"}},
		{name: "layer-seekable", layers: []fixture.Layer{{fixture.File("a", "x", 0o644)}}, openErr: true, id: "layer-seekable",
			want: []string{"error Layer 0 data is not seekable: gone"}},
		{name: "tar-format", raw: [][]byte{bytes.Repeat([]byte("not a tar "), 100)}, id: "tar-format", want: []string{"error Layer 0 is not a valid tar: "}},
		{name: "whiteout", layers: []fixture.Layer{{fixture.File("d/.wh.", "", 0o644)}}, id: "whiteout", want: []string{"error Layer 0: empty whiteout target at d/.wh."}},
		{name: "whiteout-size", layers: []fixture.Layer{{fixture.File("d/.wh.x", "junk", 0o644)}}, id: "whiteout-size",
			want: []string{"warning Layer 0: whiteout d/.wh.x has non-zero size (4 bytes)"}},
		{name: "whiteout-opaque-ok", layers: []fixture.Layer{{fixture.Opaque("d"), fixture.Whiteout("e/f")}}, id: "whiteout"},
		{name: "tar-timestamp", layers: []fixture.Layer{{fixture.File("old", "x", 0o644).WithMtime(time.Unix(-5, 0))}}, id: "tar-timestamp",
			want: []string{"error Layer 0: negative timestamp on old (mtime=-5)"}},
		{name: "tar-permissions", layers: []fixture.Layer{{fixture.File("bin/su", "x", 0o4777)}}, id: "tar-permissions",
			want: []string{"warning Layer 0: bin/su has setuid/setgid with world-writable (mode=4777)"}},
		{name: "tar-permissions-ok", layers: []fixture.Layer{{fixture.File("bin/su", "x", 0o4755)}}, id: "tar-permissions"},
		{name: "duplicate-file", layers: []fixture.Layer{{fixture.File("etc/a", "1", 0o644)}, {fixture.File("x", "1", 0o644)}, {fixture.File("etc/a", "2", 0o644)}},
			id: "duplicate-file", want: []string{"info File 'etc/a' appears in layers [0, 2]"}},
		{name: "duplicate-file-many", layers: []fixture.Layer{many, many}, id: "duplicate-file",
			want: append(func() []string {
				var w []string
				for i := range 10 {
					w = append(w, fmt.Sprintf("info File 'f%02d' appears in layers [0, 1]", i))
				}
				return w
			}(), "info ... and 2 more duplicate files")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, tars, _ := build(tc.layers...)
			if tc.raw != nil {
				tars, cfg = tc.raw, []byte(`{"rootfs": {"type": "layers", "diff_ids": ["sha256:00"]}}`)
			}
			if tc.badCfg {
				cfg = []byte(`{"rootfs": {"type": "layers", "diff_ids": ["sha256:` + strings.Repeat("0", 64) + `"]}}`)
			}
			man := ""
			if tc.man != nil {
				man = tc.man(cfg)
			}
			got := find(runLayers(t, meta(t, man, string(cfg)), cfg, tars, tc.openErr), tc.id)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				sev, msg, _ := strings.Cut(w, " ")
				if got[i].Severity != sev || !strings.HasPrefix(got[i].Message, msg) {
					t.Errorf("result %d = %s %q, want %s %q...", i, got[i].Severity, got[i].Message, sev, msg)
				}
			}
		})
	}
}

func sha(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
