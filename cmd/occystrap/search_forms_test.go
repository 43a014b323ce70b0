package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/fixture"
)

// TestSearchForms runs the binary's search in its script-friendly forms
// that no name can make ambiguous: JSON lines, another separator, NUL.
func TestSearchForms(t *testing.T) {
	src, a := writeArchive(t, false)
	type m struct{ layer, path string }
	want := []m{
		{a.LayerNames[0], "etc/app.conf"}, {a.LayerNames[0], "opt/app/old.conf"},
		{a.LayerNames[1], "opt/app/.wh.old.conf"}, {a.LayerNames[1], "etc/link.conf"},
		{a.LayerNames[2], "opt/app/new.conf"}, {a.LayerNames[2], "opt/app/hard.conf"},
	}
	records := func(out, sep, end string) [][]string {
		var r [][]string
		for _, line := range strings.Split(strings.TrimSuffix(out, end), end) {
			r = append(r, strings.Split(line, sep))
		}
		return r
	}
	var wantFields [][]string
	for _, w := range want {
		wantFields = append(wantFields, []string{"fixture/app", "v1", w.layer, w.path})
	}

	t.Run("json", func(t *testing.T) {
		out, _ := binMust(t, nil, "-O", "json", "search", "tar://"+src, "*.conf")
		var got [][]string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var j struct {
				Image, Tag, Layer, Path, Type, LinkName string
				Size                                    *int64
			}
			if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			got = append(got, []string{j.Image, j.Tag, j.Layer, j.Path})
			switch j.Path {
			case "opt/app/new.conf":
				if j.Type != "file" || j.Size == nil || *j.Size != 4 {
					t.Errorf("new.conf: type %q size %v, want file of 4 bytes", j.Type, j.Size)
				}
			case "etc/link.conf":
				if j.Type != "symlink" || j.LinkName != "app.conf" {
					t.Errorf("link.conf: type %q linkname %q", j.Type, j.LinkName)
				}
			}
		}
		if d := cmp.Diff(wantFields, got); d != "" {
			t.Errorf("-O json (-want +got):\n%s", d)
		}
	})
	t.Run("separator", func(t *testing.T) {
		out, _ := binMust(t, nil, "search", "--separator", `\t`, "tar://"+src, "*.conf")
		if d := cmp.Diff(wantFields, records(out, "\t", "\n")); d != "" {
			t.Errorf("--separator '\\t' (-want +got):\n%s", d)
		}
	})
	t.Run("null", func(t *testing.T) {
		out, _ := binMust(t, nil, "search", "-z", "tar://"+src, "*.conf")
		fields := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
		var got [][]string
		for i := 0; i+4 <= len(fields); i += 4 {
			got = append(got, fields[i:i+4])
		}
		if len(fields)%4 != 0 || strings.Contains(out, "\n") {
			t.Errorf("-z output is not NUL-separated fields in fours: %q", out)
		}
		if d := cmp.Diff(wantFields, got); d != "" {
			t.Errorf("-z (-want +got):\n%s", d)
		}
	})
	t.Run("default unchanged", func(t *testing.T) {
		out, _ := binMust(t, nil, "search", "--script-friendly", "tar://"+src, "*.conf")
		if !strings.HasPrefix(out, "fixture/app:v1:"+a.LayerNames[0]+":etc/app.conf\n") {
			t.Errorf("script-friendly default changed: %q", out)
		}
	})
	t.Run("conflict", func(t *testing.T) {
		code, _, errs := binRun(t, nil, "-O", "json", "search", "-z", "tar://"+src, "*.conf")
		if code != 1 || !strings.Contains(errs, "give one") {
			t.Errorf("-O json with -z: exit %d\n%s", code, errs)
		}
	})
}

// TestSearchFormsOddNames: a tab or a newline in a member name is escaped
// in the line forms (so a tab separator stays unambiguous and no name
// forges a line) and carried exactly by -z and -O json.
func TestSearchFormsOddNames(t *testing.T) {
	img := fixture.Image{Name: "fixture/odd", Tag: "v1", Layers: []fixture.Layer{
		{fixture.File("tab\there.conf", "a", 0o644), fixture.File("new\nline.conf", "b", 0o644)},
	}}
	path := filepath.Join(t.TempDir(), "odd.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.WriteLegacyArchive(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, _ := binMust(t, nil, "search", "--separator", `\t`, "tar://"+path, "*.conf")
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if n := len(strings.Split(line, "\t")); n != 4 {
			t.Errorf("--separator '\\t' line %q has %d fields, want 4", line, n)
		}
	}
	if !strings.Contains(out, `tab\there.conf`) || !strings.Contains(out, `new\nline.conf`) {
		t.Errorf("names not escaped in the line form:\n%q", out)
	}
	out, _ = binMust(t, nil, "search", "-z", "tar://"+path, "*.conf")
	fields := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	if len(fields) != 8 || !slices.Contains(fields, "tab\there.conf") || !slices.Contains(fields, "new\nline.conf") {
		t.Errorf("-z fields %q, want the two names exactly", fields)
	}
	out, _ = binMust(t, nil, "-O", "json", "search", "tar://"+path, "*.conf")
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var j struct{ Path string }
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		paths = append(paths, j.Path)
	}
	if !slices.Contains(paths, "tab\there.conf") || !slices.Contains(paths, "new\nline.conf") {
		t.Errorf("-O json paths %q, want the two names exactly", paths)
	}
}
