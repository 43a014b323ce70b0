package tarfmt

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/testing/fixture"
	"github.com/occystrap/occystrap/internal/testing/tartest"
)

func rewrite(t *testing.T, in []byte, tf Transform) ([]byte, Counts) {
	t.Helper()
	var out bytes.Buffer
	c, err := Rewrite(&out, bytes.NewReader(in), tf)
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), c
}

func TestRewriteIdentity(t *testing.T) {
	t.Parallel()
	out, c := rewrite(t, tartest.Layer(), nil)
	got, err := tartest.List(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tartest.Rewritten(), got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	keys, err := tartest.RecordKeys(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tartest.RewrittenKeys, keys); diff != "" {
		t.Errorf("raw PAX keys (-want +got):\n%s", diff)
	}
	if c != (Counts{Members: 17}) {
		t.Errorf("counts = %+v", c)
	}
	// Stable, and a fixed point: rewriting the output again changes nothing.
	again, _ := rewrite(t, tartest.Layer(), nil)
	if !bytes.Equal(out, again) {
		t.Error("two rewrites of the same input differ")
	}
	twice, _ := rewrite(t, out, nil)
	if !bytes.Equal(out, twice) {
		t.Error("rewriting the output changed it")
	}
}

func TestRewriteTransform(t *testing.T) {
	t.Parallel()
	var seen []string
	out, c := rewrite(t, tartest.Layer(), func(m *Member) bool {
		seen = append(seen, m.Name)
		if strings.HasPrefix(m.Name, "dev/") {
			return false
		}
		m.Header.Mode = 0o600
		return true
	})
	if c != (Counts{Members: 17, Dropped: 3}) {
		t.Errorf("counts = %+v", c)
	}
	if seen[0] != "etc" {
		t.Errorf("a directory's Name is %q, want it without the slash", seen[0])
	}
	got, err := tartest.List(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 14 {
		t.Fatalf("%d members, want 14", len(got))
	}
	for _, m := range got {
		if strings.HasPrefix(m.Name, "dev/") || m.Mode != 0o600 {
			t.Errorf("member %q mode %o was not transformed", m.Name, m.Mode)
		}
	}
}

func TestOldRegularType(t *testing.T) {
	t.Parallel()
	in := fixture.RawTar(fixture.Layer{
		fixture.Entry{Name: "d/", OldType: true, Mode: 0o755},
		fixture.Entry{Name: "d/f", OldType: true, Mode: 0o644, Body: "x"},
	})
	var names []string
	out, _ := rewrite(t, in, func(m *Member) bool {
		names = append(names, m.Name+" "+TypeName(m.Header))
		return true
	})
	if diff := cmp.Diff([]string{"d directory", "d/f file"}, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got, err := tartest.List(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "d/" || got[0].Type != '5' || got[1].Type != '0' || got[1].Size != 1 {
		t.Errorf("members %+v", got)
	}
}

func TestWalkAndTypeName(t *testing.T) {
	t.Parallel()
	var got []string
	err := Walk(bytes.NewReader(tartest.Layer()), func(m *Member) error {
		got = append(got, m.Name+" "+TypeName(m.Header))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"etc directory", "etc/plain.conf file", "bin/ping file", "old/file file",
		tartest.LongDir + " file", tartest.LongBase + " file", "données/été.txt file", "home/owner file",
		"bin/sh symlink", "bin/busybox file", "bin/ash hardlink", "var/sparse.img file", "var/sparse.old file",
		"dev/fifo fifo", "dev/null character device", "dev/sda block device", "opt/app/.wh.old.conf file",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if TypeName(&tar.Header{Typeflag: 'V'}) != "unknown" {
		t.Error("type V is not unknown")
	}
}

func TestRewriteErrors(t *testing.T) {
	t.Parallel()
	layer := tartest.Layer()
	tests := []struct {
		name string
		in   []byte
	}{
		{"truncated content", layer[:2048+100]},
		{"bad header", append(bytes.Repeat([]byte{'x'}, 512), make([]byte, 1024)...)},
		{"bad atime", fixture.RawTar(fixture.Layer{{Name: "a", PAX: [][2]string{{"atime", "soon"}}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			if _, err := Rewrite(&out, bytes.NewReader(tt.in), nil); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestParsePAXTime(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"0", "0"}, {"1.5", "1.5"}, {"-1.5", "-1.5"}, {"-86400.25", "-86400.25"}, {"12.0000000019", "12.000000001"},
	}
	for _, tt := range tests {
		ts, err := parsePAXTime(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := tartest.FormatTime(ts.Unix(), ts.Nanosecond()); got != tt.want {
			t.Errorf("parsePAXTime(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "x", "1.x", "1.-5"} {
		if _, err := parsePAXTime(bad); err == nil {
			t.Errorf("parsePAXTime(%q): no error", bad)
		}
	}
}
