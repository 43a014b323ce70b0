// Package tartest lists tars in a comparable form (List, RecordKeys) and
// holds the PAX test layer (Layer) with what its identity rewrite must give
// (Rewritten, RewrittenKeys). Its layers are written by fixture.RawTar, the
// module's one tar generator. It is for tests only.
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
