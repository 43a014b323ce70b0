package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
