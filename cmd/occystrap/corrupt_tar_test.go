package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/occystrap/occystrap/internal/testing/fixture"
)

// corruptArchive writes a legacy docker-save archive of appImage whose
// config and layers mutate changes first.
func corruptArchive(t *testing.T, mutate func(cfg []byte, layers [][]byte) ([]byte, [][]byte)) string {
	t.Helper()
	b := fixture.Build(appImage())
	cfg, layers := mutate(b.Config, b.Layers)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("config.json", cfg)
	var paths []string
	for i, l := range layers {
		p := "l" + string(rune('0'+i)) + "/layer.tar"
		add(p, l)
		paths = append(paths, p)
	}
	man, err := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"fixture/app:v1"}, "Layers": paths}})
	if err != nil {
		t.Fatal(err)
	}
	add("manifest.json", man)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bad.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCorruptTarInputRefused: a truncated config, a config with wrong JSON
// types, and a layer whose sha256 is not its DiffID all fail, into dir://
// and tar://, leaving no manifest or archive (issue 10, class 11).
func TestCorruptTarInputRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(cfg []byte, layers [][]byte) ([]byte, [][]byte)
		want   string
	}{
		{"truncated-config", func(cfg []byte, l [][]byte) ([]byte, [][]byte) { return cfg[:len(cfg)/2], l }, "invalid image config: unexpected end of JSON input"},
		{"config-wrong-types", func(cfg []byte, l [][]byte) ([]byte, [][]byte) {
			return bytes.Replace(cfg, []byte(`"architecture":"amd64"`), []byte(`"architecture":64`), 1), l
		}, "invalid image config: json: cannot unmarshal number"},
		{"diff-ids-wrong-type", func(cfg []byte, l [][]byte) ([]byte, [][]byte) {
			return bytes.Replace(cfg, []byte(`"diff_ids":[`), []byte(`"diff_ids":[5,`), 1), l
		}, "invalid image config"},
		{"diff-ids-count", func(cfg []byte, l [][]byte) ([]byte, [][]byte) { return cfg, l[:len(l)-1] }, "invalid image config: 3 DiffIDs for 2 layers"},
		{"layer-not-its-diffid", func(cfg []byte, l [][]byte) ([]byte, [][]byte) {
			// One more zero block after the end of the archive: still a
			// valid tar (a tar reader stops before it), another sha256.
			l[1] = append(append([]byte(nil), l[1]...), make([]byte, 512)...)
			return cfg, l
		}, "layer DiffID does not match the image config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			archive := corruptArchive(t, tc.mutate)
			for _, dest := range []string{"dir", "dir-expand", "tar", "oci"} {
				base := t.TempDir()
				uri := map[string]string{
					"dir":        "dir://" + filepath.Join(base, "out"),
					"dir-expand": "dir://" + filepath.Join(base, "out") + "?expand=true",
					"tar":        "tar://" + filepath.Join(base, "out.tar"),
					"oci":        "oci://" + filepath.Join(base, "out"),
				}[dest]
				code, _, stderr := occystrap(t, "--log-format", "json", "process", "tar://"+archive, uri)
				if code != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "verified OK") {
					t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 1 and %q", dest, code, stderr, tc.want)
				}
				for _, p := range []string{"out/manifest.json", "out/catalog.json", "out.tar", "out/rootfs", "out/container-config.json"} {
					if _, err := os.Stat(filepath.Join(base, p)); err == nil {
						t.Errorf("%s: %s exists after a failed run", dest, p)
					}
				}
			}
		})
	}
}

// TestTarInputRefusesOptions: tar:// takes no URI option (issue 10, class
// 12), as every other scheme refuses the options it does not know.
func TestTarInputRefusesOptions(t *testing.T) {
	t.Parallel()
	archive, _ := writeArchive(t, false)
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := occystrap(t, "process", "tar://"+archive+"?expand=true", "dir://"+out)
	if code != 2 || !strings.Contains(stderr, `unknown option "expand" for tar:// (known: none)`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the refused run created %s", out)
	}
	for _, cmd := range [][]string{{"info", "tar://" + archive + "?x=1"}, {"search", "tar://" + archive + "?x=1", "*"}, {"check", "tar://" + archive + "?x=1"}} {
		if code, _, stderr := occystrap(t, cmd...); code != 2 || !strings.Contains(stderr, `unknown option "x" for tar://`) {
			t.Errorf("%v: exit %d, stderr:\n%s", cmd, code, stderr)
		}
	}
}
