package tarfmt

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/occystrap/occystrap/internal/tarfmt/tartest"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var emptySum = sum(nil)

const comment = "built by test"

// wantIdentity is the fixture layer rewritten with no transform.
func wantIdentity() []tartest.Member {
	c := map[string]string{"comment": comment}
	return []tartest.Member{
		{Name: "etc/", Type: '5', Mode: 0o755, Mtime: "1600000000", SHA256: emptySum, USTAR: true},
		{Name: "etc/plain.conf", Type: '0', Mode: 0o644, UID: 1, GID: 2, Uname: "root", Gname: "wheel", Mtime: "1600000001", Size: 6, SHA256: sum([]byte("plain\n")), USTAR: true},
		{Name: "bin/ping", Type: '0', Mode: 0o4755, Mtime: "1700000000.25", Atime: "1700000100.5", Ctime: "1700000200.75", Size: 9, SHA256: sum([]byte("\x7fELF ping")),
			Records: map[string]string{"LIBARCHIVE.creationtime": "1600000000", "SCHILY.xattr.security.capability": tartest.Capability, "SCHILY.xattr.user.note": "kept"}},
		{Name: "old/file", Type: '0', Mode: 0o600, Mtime: "-86400.5", Size: 4, SHA256: sum([]byte("1969"))},
		{Name: tartest.LongDir, Type: '0', Mode: 0o644, Mtime: "1600000002", Size: 4, SHA256: sum([]byte("long")), USTAR: true},
		{Name: tartest.LongBase, Type: '0', Mode: 0o644, Mtime: "1600000003", Size: 8, SHA256: sum([]byte("longbase"))},
		{Name: "données/été.txt", Type: '0', Mode: 0o644, Mtime: "1600000004", Size: 5, SHA256: sum([]byte("été"))},
		{Name: "home/owner", Type: '0', Mode: 0o644, UID: 3000000, Uname: strings.Repeat("u", 40), Mtime: "1600000005", Size: 1, SHA256: sum([]byte("o"))},
		{Name: "bin/sh", Type: '2', Mode: 0o777, Mtime: "1600000006", Linkname: "busybox", SHA256: emptySum, USTAR: true},
		{Name: "bin/busybox", Type: '0', Mode: 0o755, Mtime: "1600000007", Size: 2, SHA256: sum([]byte("bb")), Records: c},
		{Name: "bin/ash", Type: '1', Mode: 0o755, Mtime: "1600000008", Linkname: "bin/busybox", SHA256: emptySum, Records: c},
		{Name: "var/sparse.img", Type: '0', Mode: 0o644, Mtime: "1600000009", Size: 10000, SHA256: sum(tartest.Sparse1), Records: c},
		{Name: "var/sparse.old", Type: '0', Mode: 0o644, Mtime: "1600000010", Size: 4096, SHA256: sum(tartest.SparseOld), Records: c},
		{Name: "dev/fifo", Type: '6', Mode: 0o600, Mtime: "1600000011", SHA256: emptySum, Records: c},
		{Name: "dev/null", Type: '3', Mode: 0o666, Mtime: "1600000012", SHA256: emptySum, Records: c},
		{Name: "dev/sda", Type: '4', Mode: 0o660, Mtime: "1600000013", SHA256: emptySum, Records: c},
		{Name: "opt/app/.wh.old.conf", Type: '0', Mode: 0o644, Mtime: "1600000014", SHA256: emptySum, Records: c},
	}
}

// wantRawKeys are the record keys of each member's extended header in the
// identity rewrite: field records only where the field needs them.
var wantRawKeys = [][]string{
	nil, nil,
	{"LIBARCHIVE.creationtime", "SCHILY.xattr.security.capability", "SCHILY.xattr.user.note", "atime", "ctime", "mtime"},
	{"mtime"},
	nil,
	{"path"},
	{"path"},
	{"uid", "uname"},
	nil,
	{"comment"}, {"comment"}, {"comment"}, {"comment"}, {"comment"}, {"comment"}, {"comment"}, {"comment"},
}

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
	if diff := cmp.Diff(wantIdentity(), got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	keys, err := tartest.RecordKeys(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantRawKeys, keys); diff != "" {
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
		{"bad atime", tartest.Build(tartest.Entry{Name: "a", PAX: [][2]string{{"atime", "soon"}}})},
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
