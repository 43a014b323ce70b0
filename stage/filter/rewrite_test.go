package filter

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/testing/tartest"
	"github.com/occystrap/occystrap/stage"
)

// normalized is the fixture layer after normalize-timestamps with ts.
func normalized(ts string) []tartest.Member {
	want := tartest.Rewritten()
	for i := range want {
		m := &want[i]
		m.Mtime, m.Atime, m.Ctime = ts, "", ""
		delete(m.Records, "LIBARCHIVE.creationtime")
		// Members that needed PAX only for their times are USTAR now.
		switch m.Name {
		case "old/file":
			m.USTAR = true
		}
	}
	return want
}

// checkRewritten checks a rewritten layer item: name and DiffID are the
// sha256 of the content, the size its length, the body a temp file.
func checkRewritten(t *testing.T, g got, seq int) []byte {
	t.Helper()
	it := layerOf(g, seq)
	data := g.contents[seq]
	sum := sha(data)
	if it.Name != sum || it.DiffID != digest.Digest("sha256:"+sum) || it.Size != int64(len(data)) {
		t.Errorf("layer %d: name %s diffid %s size %d; content sha256 %s size %d", seq, it.Name, it.DiffID, it.Size, sum, len(data))
	}
	if fb, ok := it.Body.(*stage.FileBody); !ok || !fb.Temp {
		t.Errorf("layer %d: body %T is not a temporary file", seq, it.Body)
	}
	return data
}

// checkConfig checks the rewritten config against the layers received.
func checkConfig(t *testing.T, g got, ids []string) {
	t.Helper()
	want := pyConfig(ids)
	if string(g.config.Data) != want {
		t.Errorf("config:\n got %s\nwant %s", g.config.Data, want)
	}
	if g.config.Name != sha([]byte(want))+".json" {
		t.Errorf("config name %s, want <sha256 of its bytes>.json", g.config.Name)
	}
	if g.config.Seq != -1 || g.config.Kind != stage.KindConfig {
		t.Errorf("config item %+v", g.config)
	}
	if g.configAfter != len(g.contents) {
		t.Errorf("config arrived after %d layers, want after all %d", g.configAfter, len(g.contents))
	}
}

func TestNormalizeTimestamps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ts   int64
		want string
	}{
		{"epoch", 0, "0"},
		{"given", 1700000000, "1700000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			digests := map[string]bool{}
			for range 2 {
				ti := newImage(layerSpec{data: tartest.Layer()}, layerSpec{data: simpleLayer(), file: true})
				g, err := run(t, ti, NewNormalizeTimestamps(tt.ts, Options{TempDir: tmp, Parallel: 2}))
				if err != nil {
					t.Fatal(err)
				}
				l0 := checkRewritten(t, g, 0)
				l1 := checkRewritten(t, g, 1)
				if diff := cmp.Diff(normalized(tt.want), list(t, l0)); diff != "" {
					t.Errorf("layer 0 (-want +got):\n%s", diff)
				}
				for _, m := range list(t, l1) {
					if m.Mtime != tt.want || !m.USTAR {
						t.Errorf("layer 1 member %s: mtime %s USTAR %v", m.Name, m.Mtime, m.USTAR)
					}
				}
				// Dropped and kept records, read raw.
				keys, err := tartest.RecordKeys(l0)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]string{"SCHILY.xattr.security.capability", "SCHILY.xattr.user.note"}, keys[2]); diff != "" {
					t.Errorf("bin/ping records (-want +got):\n%s", diff)
				}
				if keys[3] != nil {
					t.Errorf("old/file records %v, want none (USTAR)", keys[3])
				}
				ids := []string{"sha256:" + sha(l0), "sha256:" + sha(l1)}
				checkConfig(t, g, ids)
				if ti.released.Load() != ti.bodies {
					t.Errorf("%d of %d source bodies released", ti.released.Load(), ti.bodies)
				}
				emptyDir(t, tmp)
				digests[strings.Join(ids, ",")+g.config.Name] = true
			}
			if len(digests) != 1 {
				t.Errorf("two runs gave different digests: %v", digests)
			}
		})
	}
}

func TestExclude(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	ti := newImage(layerSpec{data: tartest.Layer(), file: true}, layerSpec{data: simpleLayer()})
	f := NewExclude(SplitPatterns("dev/*,*.conf,,etc"), Options{TempDir: tmp, Parallel: 4})
	g, err := run(t, ti, f)
	if err != nil {
		t.Fatal(err)
	}
	var want []tartest.Member
	for _, m := range tartest.Rewritten() {
		if strings.HasPrefix(m.Name, "dev/") || strings.HasSuffix(m.Name, ".conf") || m.Name == "etc/" {
			continue
		}
		want = append(want, m)
	}
	l0 := checkRewritten(t, g, 0)
	if diff := cmp.Diff(want, list(t, l0)); diff != "" {
		t.Errorf("layer 0 (-want +got):\n%s", diff)
	}
	l1 := checkRewritten(t, g, 1)
	var names []string
	for _, m := range list(t, l1) {
		names = append(names, m.Name+"@"+m.Mtime)
	}
	if diff := cmp.Diff([]string{"app/@1650000000", "app/run@1650000002.123456789"}, names); diff != "" {
		t.Errorf("layer 1 (-want +got):\n%s", diff)
	}
	checkConfig(t, g, []string{"sha256:" + sha(l0), "sha256:" + sha(l1)})
	if !f.Properties().ChangesContent {
		t.Error("exclude does not say it changes content")
	}
	emptyDir(t, tmp)
}

func TestChainsBothOrders(t *testing.T) {
	t.Parallel()
	results := map[string]string{}
	for _, order := range []string{"exclude,normalize", "normalize,exclude"} {
		tmp := t.TempDir()
		ex := NewExclude([]string{"bin/*"}, Options{TempDir: tmp, Parallel: 2})
		nt := NewNormalizeTimestamps(0, Options{TempDir: tmp, Parallel: 2})
		stages := []stage.Stage{ex, nt}
		if order == "normalize,exclude" {
			stages = []stage.Stage{nt, ex}
		}
		ti := newImage(layerSpec{data: tartest.Layer()}, layerSpec{data: simpleLayer(), file: true})
		g, err := run(t, ti, stages...)
		if err != nil {
			t.Fatal(err)
		}
		l0, l1 := checkRewritten(t, g, 0), checkRewritten(t, g, 1)
		for _, m := range list(t, l0) {
			if strings.HasPrefix(m.Name, "bin/") || m.Mtime != "0" {
				t.Errorf("%s: member %s mtime %s left", order, m.Name, m.Mtime)
			}
		}
		ids := []string{"sha256:" + sha(l0), "sha256:" + sha(l1)}
		checkConfig(t, g, ids)
		results[order] = strings.Join(ids, ",") + " " + g.config.Name
		emptyDir(t, tmp)
	}
	if results["exclude,normalize"] != results["normalize,exclude"] {
		t.Errorf("orders differ: %v", results)
	}
}

func TestSkippedLayers(t *testing.T) {
	t.Parallel()
	base, app := tartest.Layer(), simpleLayer()
	m := &DiffIDMap{}
	// A first run rewrites the base layer and records it in the shared map.
	first := newImage(layerSpec{data: base})
	g1, err := run(t, first, NewNormalizeTimestamps(0, Options{TempDir: t.TempDir(), DiffIDs: m}))
	if err != nil {
		t.Fatal(err)
	}
	newBase := layerOf(g1, 0).DiffID
	if got, ok := m.Get(digest.Digest("sha256:" + sha(base))); !ok || got != newBase {
		t.Fatalf("map holds %s %v, want %s", got, ok, newBase)
	}
	// A second run skips the base layer (the destination has it).
	ti := newImage(layerSpec{data: base, skipped: true, name: "base"}, layerSpec{data: app})
	g, err := run(t, ti, NewNormalizeTimestamps(0, Options{TempDir: t.TempDir(), DiffIDs: m}))
	if err != nil {
		t.Fatal(err)
	}
	sk := layerOf(g, 0)
	if sk.Body != nil || sk.Name != "base" || sk.DiffID != digest.Digest("sha256:"+sha(base)) {
		t.Errorf("skipped layer changed: %+v", sk)
	}
	l1 := checkRewritten(t, g, 1)
	want := pyConfig([]string{newBase.String(), "sha256:" + sha(l1)})
	if string(g.config.Data) != want {
		t.Errorf("config:\n got %s\nwant %s", g.config.Data, want)
	}
	// Without a map the skipped layer's DiffID stays.
	ti = newImage(layerSpec{data: base, skipped: true}, layerSpec{data: app})
	g, err = run(t, ti, NewNormalizeTimestamps(0, Options{TempDir: t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if want := pyConfig([]string{"sha256:" + sha(base), "sha256:" + sha(checkRewritten(t, g, 1))}); string(g.config.Data) != want {
		t.Errorf("config:\n got %s\nwant %s", g.config.Data, want)
	}
}

func TestRewriteErrors(t *testing.T) {
	t.Parallel()
	good := tartest.Layer()
	tests := []struct {
		name   string
		ti     *testImage
		is     error
		substr string
	}{
		{"config not JSON", &testImage{config: []byte("{nope"), layers: []layerSpec{{data: good}}}, ErrConfig, "config"},
		{"config without diff_ids", &testImage{config: []byte(`{"rootfs":{}}`), layers: []layerSpec{{data: good}}}, ErrConfig, "diff_ids"},
		{"diff_ids too short", &testImage{config: []byte(`{"rootfs":{"diff_ids":[]}}`), layers: []layerSpec{{data: good}}}, ErrConfig, "layer 0"},
		{"broken layer", &testImage{config: []byte(`{}`), layers: []layerSpec{{data: good}, {data: good[:3000], name: "broken"}}}, nil, "layer 1 (broken)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			_, err := run(t, tt.ti, NewNormalizeTimestamps(0, Options{TempDir: tmp, Parallel: 2}))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.substr) || !strings.Contains(err.Error(), "normalize-timestamps") {
				t.Errorf("error %q does not name %q and the filter", err, tt.substr)
			}
			if tt.ti.released.Load() != tt.ti.bodies {
				t.Errorf("%d of %d source bodies released", tt.ti.released.Load(), tt.ti.bodies)
			}
			emptyDir(t, tmp)
		})
	}
}
