package tartest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/occystrap/occystrap/internal/testing/fixture"
)

// Capability is a security.capability xattr value (cap_net_raw+ep).
const Capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// LongDir is a path over 100 bytes that USTAR can still hold (name+prefix).
var LongDir = strings.Repeat("d", 60) + "/" + strings.Repeat("e", 60)

// LongBase is a file name whose last part alone is over 100 bytes.
var LongBase = "opt/" + strings.Repeat("f", 120)

// Sparse1 is the expanded content of the PAX 1.0 sparse member.
var Sparse1 = func() []byte {
	d := make([]byte, 10000)
	copy(d, "abc")
	copy(d[8192:], "xy")
	return d
}()

// SparseOld is the expanded content of the old GNU sparse member.
var SparseOld = func() []byte {
	d := make([]byte, 4096)
	copy(d[1024:], "hello")
	return d
}()

func pax10Sparse() string {
	var b bytes.Buffer
	b.WriteString("2\n0\n3\n8192\n2\n")
	b.Write(make([]byte, 512-b.Len()))
	b.WriteString("abc")
	b.WriteString("xy")
	return b.String()
}

// Layer is a layer exercising the PAX rules: every kind of member and
// record the filters must handle.
func Layer() []byte {
	return fixture.RawTar(fixture.Layer{
		fixture.Entry{Name: "etc", Type: tar.TypeDir, Mode: 0o755, Mtime: time.Unix(1600000000, 0)},
		fixture.Entry{Name: "etc/plain.conf", Mode: 0o644, UID: 1, GID: 2, Uname: "root", Gname: "wheel", Mtime: time.Unix(1600000001, 0), Body: "plain\n"},
		fixture.Entry{Name: "bin/ping", Mode: 0o4755, Mtime: time.Unix(1700000000, 0), Body: "\x7fELF ping", PAX: [][2]string{
			{"path", "bin/ping"},
			{"mtime", "1700000000.25"},
			{"atime", "1700000100.5"},
			{"ctime", "1700000200.75"},
			{"LIBARCHIVE.creationtime", "1600000000"},
			{"SCHILY.xattr.security.capability", Capability},
			{"SCHILY.xattr.user.note", "kept"},
		}},
		fixture.Entry{Name: "old/file", Mode: 0o600, Mtime: time.Unix(0, 0), Body: "1969", PAX: [][2]string{{"mtime", "-86400.5"}}},
		fixture.Entry{Name: LongDir, Mode: 0o644, Mtime: time.Unix(1600000002, 0), Body: "long"},
		fixture.Entry{Name: LongBase[:100], Mode: 0o644, Mtime: time.Unix(1600000003, 0), Body: "longbase", PAX: [][2]string{{"path", LongBase}}},
		fixture.Entry{Name: "data/ete.txt", Mode: 0o644, Mtime: time.Unix(1600000004, 0), Body: "été", PAX: [][2]string{
			{"hdrcharset", "ISO-IR 10646 2000 UTF-8"},
			{"path", "données/été.txt"},
		}},
		fixture.Entry{Name: "home/owner", Mode: 0o644, Mtime: time.Unix(1600000005, 0), Body: "o", PAX: [][2]string{
			{"uname", strings.Repeat("u", 40)},
			{"uid", "3000000"},
		}},
		fixture.Entry{Name: "bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Mtime: time.Unix(1600000006, 0), Link: "busybox"},
		fixture.Entry{Name: "bin/busybox", Mode: 0o755, Mtime: time.Unix(1600000007, 0), Body: "bb", Global: [][2]string{{"comment", "built by test"}}},
		fixture.Entry{Name: "bin/ash", Type: tar.TypeLink, Mode: 0o755, Mtime: time.Unix(1600000008, 0), Link: "bin/busybox"},
		fixture.Entry{Name: "var/sparse.pax", Mode: 0o644, Mtime: time.Unix(1600000009, 0), Body: pax10Sparse(), PAX: [][2]string{
			{"GNU.sparse.major", "1"},
			{"GNU.sparse.minor", "0"},
			{"GNU.sparse.name", "var/sparse.img"},
			{"GNU.sparse.realsize", "10000"},
		}},
		fixture.Entry{Name: "var/sparse.old", Mode: 0o644, Mtime: time.Unix(1600000010, 0), Body: string(SparseOld), Sparse: [][2]int64{{1024, 5}, {4095, 1}}},
		fixture.Entry{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o600, Mtime: time.Unix(1600000011, 0)},
		fixture.Entry{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Mtime: time.Unix(1600000012, 0)},
		fixture.Entry{Name: "dev/sda", Type: tar.TypeBlock, Mode: 0o660, Mtime: time.Unix(1600000013, 0)},
		fixture.Entry{Name: "opt/app/.wh.old.conf", Mode: 0o644, Mtime: time.Unix(1600000014, 0)},
	})
}

// Sum is the sha256 hex of b.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var emptySum = Sum(nil)

const comment = "built by test"

// Rewritten is the listing of Layer rewritten with no transform.
func Rewritten() []Member {
	c := map[string]string{"comment": comment}
	return []Member{
		{Name: "etc/", Type: '5', Mode: 0o755, Mtime: "1600000000", SHA256: emptySum, USTAR: true},
		{Name: "etc/plain.conf", Type: '0', Mode: 0o644, UID: 1, GID: 2, Uname: "root", Gname: "wheel", Mtime: "1600000001", Size: 6, SHA256: Sum([]byte("plain\n")), USTAR: true},
		{Name: "bin/ping", Type: '0', Mode: 0o4755, Mtime: "1700000000.25", Atime: "1700000100.5", Ctime: "1700000200.75", Size: 9, SHA256: Sum([]byte("\x7fELF ping")),
			Records: map[string]string{"LIBARCHIVE.creationtime": "1600000000", "SCHILY.xattr.security.capability": Capability, "SCHILY.xattr.user.note": "kept"}},
		{Name: "old/file", Type: '0', Mode: 0o600, Mtime: "-86400.5", Size: 4, SHA256: Sum([]byte("1969"))},
		{Name: LongDir, Type: '0', Mode: 0o644, Mtime: "1600000002", Size: 4, SHA256: Sum([]byte("long")), USTAR: true},
		{Name: LongBase, Type: '0', Mode: 0o644, Mtime: "1600000003", Size: 8, SHA256: Sum([]byte("longbase"))},
		{Name: "données/été.txt", Type: '0', Mode: 0o644, Mtime: "1600000004", Size: 5, SHA256: Sum([]byte("été"))},
		{Name: "home/owner", Type: '0', Mode: 0o644, UID: 3000000, Uname: strings.Repeat("u", 40), Mtime: "1600000005", Size: 1, SHA256: Sum([]byte("o"))},
		{Name: "bin/sh", Type: '2', Mode: 0o777, Mtime: "1600000006", Linkname: "busybox", SHA256: emptySum, USTAR: true},
		{Name: "bin/busybox", Type: '0', Mode: 0o755, Mtime: "1600000007", Size: 2, SHA256: Sum([]byte("bb")), Records: c},
		{Name: "bin/ash", Type: '1', Mode: 0o755, Mtime: "1600000008", Linkname: "bin/busybox", SHA256: emptySum, Records: c},
		{Name: "var/sparse.img", Type: '0', Mode: 0o644, Mtime: "1600000009", Size: 10000, SHA256: Sum(Sparse1), Records: c},
		{Name: "var/sparse.old", Type: '0', Mode: 0o644, Mtime: "1600000010", Size: 4096, SHA256: Sum(SparseOld), Records: c},
		{Name: "dev/fifo", Type: '6', Mode: 0o600, Mtime: "1600000011", SHA256: emptySum, Records: c},
		{Name: "dev/null", Type: '3', Mode: 0o666, Mtime: "1600000012", SHA256: emptySum, Records: c},
		{Name: "dev/sda", Type: '4', Mode: 0o660, Mtime: "1600000013", SHA256: emptySum, Records: c},
		{Name: "opt/app/.wh.old.conf", Type: '0', Mode: 0o644, Mtime: "1600000014", SHA256: emptySum, Records: c},
	}
}

// RewrittenKeys are the record keys of each member's extended header in the
// identity rewrite: field records only where the field needs them.
var RewrittenKeys = [][]string{
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
