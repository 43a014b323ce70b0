// Package tartest builds layer tars for tests, byte by byte where
// archive/tar cannot write them (PAX records it refuses, old GNU sparse
// members, global headers), and lists tars in a comparable form. It is for
// tests only.
package tartest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Entry is one raw member to write.
type Entry struct {
	Name string
	Type byte // '0' when zero
	// OldType writes the pre-POSIX regular type '\x00' instead of Type.
	OldType  bool
	Mode     int64
	UID, GID int64
	Uname    string
	Gname    string
	Mtime    int64 // whole seconds for the header field (0 when negative)
	Linkname string
	Data     []byte
	// PAX records written in an extended header ('x') before the member,
	// in the order given (as "k=v" pairs).
	PAX [][2]string
	// Global records written in a global header ('g') before the member.
	Global [][2]string
	// Sparse makes an old GNU sparse member (type 'S'): Data is the
	// expanded content and the listed [offset, length] regions are the
	// only ones stored.
	Sparse [][2]int64
}

// Build writes the entries and the end-of-archive blocks.
func Build(entries ...Entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		if len(e.Global) > 0 {
			writePAX(&b, "pax_global_header", 'g', e.Global)
		}
		if len(e.PAX) > 0 {
			writePAX(&b, "PaxHeaders/"+lastPart(e.Name), 'x', e.PAX)
		}
		if e.Sparse != nil {
			writeSparse(&b, e)
			continue
		}
		typ := e.Type
		switch {
		case e.OldType:
			typ = 0
		case typ == 0:
			typ = '0'
		}
		blk := header(e.Name, typ, int64(len(e.Data)), e)
		b.Write(blk[:])
		writeData(&b, e.Data)
	}
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

func lastPart(s string) string {
	s = strings.TrimRight(s, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func writeData(b *bytes.Buffer, d []byte) {
	b.Write(d)
	if r := len(d) % 512; r != 0 {
		b.Write(make([]byte, 512-r))
	}
}

func writePAX(b *bytes.Buffer, name string, typ byte, recs [][2]string) {
	var d bytes.Buffer
	for _, kv := range recs {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec)
		for {
			l := len(strconv.Itoa(n)) + len(rec)
			if l == n {
				break
			}
			n = l
		}
		d.WriteString(strconv.Itoa(n) + rec)
	}
	blk := header(name, typ, int64(d.Len()), Entry{Mode: 0o644})
	b.Write(blk[:])
	writeData(b, d.Bytes())
}

func octal(dst []byte, v int64) {
	s := strconv.FormatInt(v, 8)
	w := len(dst) - 1
	if len(s) > w {
		s = s[len(s)-w:]
	}
	copy(dst, strings.Repeat("0", w-len(s))+s)
	dst[w] = 0
}

func header(name string, typ byte, size int64, e Entry) [512]byte {
	var h [512]byte
	if len(name) > 100 {
		// Split into prefix and name as USTAR does; the caller makes sure it
		// splits or uses a PAX path.
		i := strings.LastIndexByte(name[:min(len(name), 156)], '/')
		if i > 0 && len(name)-i-1 <= 100 {
			copy(h[345:500], name[:i])
			name = name[i+1:]
		} else {
			name = name[:100]
		}
	}
	copy(h[0:100], name)
	octal(h[100:108], e.Mode)
	octal(h[108:116], e.UID)
	octal(h[116:124], e.GID)
	octal(h[124:136], size)
	octal(h[136:148], max(e.Mtime, 0))
	h[156] = typ
	copy(h[157:257], e.Linkname)
	copy(h[257:265], "ustar\x0000")
	copy(h[265:297], e.Uname)
	copy(h[297:329], e.Gname)
	checksum(&h)
	return h
}

func checksum(h *[512]byte) {
	copy(h[148:156], "        ")
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// writeSparse writes an old GNU sparse member (at most 4 regions).
func writeSparse(b *bytes.Buffer, e Entry) {
	var stored []byte
	for _, r := range e.Sparse {
		stored = append(stored, e.Data[r[0]:r[0]+r[1]]...)
	}
	var h [512]byte
	copy(h[0:100], e.Name)
	octal(h[100:108], e.Mode)
	octal(h[108:116], e.UID)
	octal(h[116:124], e.GID)
	octal(h[124:136], int64(len(stored)))
	octal(h[136:148], e.Mtime)
	h[156] = 'S'
	copy(h[257:265], "ustar  \x00")
	copy(h[265:297], e.Uname)
	copy(h[297:329], e.Gname)
	for i, r := range e.Sparse {
		off := 386 + i*24
		octal(h[off:off+12], r[0])
		octal(h[off+12:off+24], r[1])
	}
	octal(h[483:495], int64(len(e.Data)))
	checksum(&h)
	b.Write(h[:])
	writeData(b, stored)
}

// Member is one member of a tar in a comparable form.
type Member struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Uname    string
	Gname    string
	Mtime    string // unix seconds with nanoseconds, e.g. "-1.5", "0"
	Atime    string
	Ctime    string
	Linkname string
	Size     int64
	SHA256   string // of the content
	// Records are the PAX records the member was read with, minus those
	// archive/tar reads into the fields above (path, mtime, ...).
	Records map[string]string
	// USTAR is set when the member had no extended header of its own.
	USTAR bool
}

// List reads a tar and lists its members.
func List(data []byte) ([]Member, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	var out []Member
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			return nil, err
		}
		m := Member{
			Name: h.Name, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
			Uname: h.Uname, Gname: h.Gname, Mtime: FormatTime(h.ModTime.Unix(), h.ModTime.Nanosecond()),
			Linkname: h.Linkname, Size: h.Size, SHA256: hex.EncodeToString(sum.Sum(nil)),
			USTAR: len(h.PAXRecords) == 0,
		}
		if !h.AccessTime.IsZero() {
			m.Atime = FormatTime(h.AccessTime.Unix(), h.AccessTime.Nanosecond())
		}
		if !h.ChangeTime.IsZero() {
			m.Ctime = FormatTime(h.ChangeTime.Unix(), h.ChangeTime.Nanosecond())
		}
		for k, v := range h.PAXRecords {
			switch k {
			case "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime":
				continue
			}
			if m.Records == nil {
				m.Records = map[string]string{}
			}
			m.Records[k] = v
		}
		out = append(out, m)
	}
}

// RecordKeys lists every PAX record key of every extended header in a tar,
// read raw (including the ones archive/tar folds into fields), per member in
// order; a member without an extended header has nil.
func RecordKeys(data []byte) ([][]string, error) {
	var out [][]string
	var pending []string
	for off := 0; off+512 <= len(data); {
		h := data[off : off+512]
		if bytes.Equal(h, make([]byte, 512)) {
			break
		}
		size, err := strconv.ParseInt(strings.TrimRight(strings.TrimLeft(string(h[124:136]), " "), "\x00 "), 8, 64)
		if err != nil {
			return nil, fmt.Errorf("size at %d: %w", off, err)
		}
		typ := h[156]
		body := data[off+512 : off+512+int(size)]
		off += 512 + int((size+511)/512*512)
		switch typ {
		case 'x':
			for len(body) > 0 {
				sp := bytes.IndexByte(body, ' ')
				n, err := strconv.Atoi(string(body[:sp]))
				if err != nil {
					return nil, err
				}
				rec := string(body[sp+1 : n-1])
				k, _, _ := strings.Cut(rec, "=")
				pending = append(pending, k)
				body = body[n:]
			}
			continue
		case 'g':
			continue
		}
		sort.Strings(pending)
		out = append(out, pending)
		pending = nil
	}
	return out, nil
}

// FormatTime writes seconds and nanoseconds as a decimal.
func FormatTime(secs int64, nsecs int) string {
	if nsecs == 0 {
		return strconv.FormatInt(secs, 10)
	}
	// time.Unix normalizes nsecs into [0, 1e9): show the signed decimal.
	f := strconv.FormatInt(secs, 10)
	if secs < 0 {
		s := -secs - 1
		frac := 1e9 - nsecs
		return "-" + strings.TrimRight(fmt.Sprintf("%d.%09d", s, frac), "0")
	}
	return strings.TrimRight(fmt.Sprintf("%s.%09d", f, nsecs), "0")
}
