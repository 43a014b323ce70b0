package tarfmt

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"
)

// Member is one member of a layer, as a Transform or a Walk callback sees it.
type Member struct {
	// Header is what will be written. Its PAXRecords hold only the kept
	// records; atime and ctime are in AccessTime and ChangeTime (zero when
	// the source had no such record). A Transform may change it.
	Header *tar.Header
	// Name is the member's name as Python's tarfile gives it (a directory
	// without its trailing '/'): the name filters match against.
	Name string
}

// Transform decides whether a member is kept and may edit its header. It
// must not change Size or the type of a member with content.
type Transform func(m *Member) (keep bool)

// Counts says what a rewrite did.
type Counts struct {
	Members int // members read
	Dropped int // members the Transform dropped
}

// droppedRecord reports whether a PAX record never goes to the output:
// records that mirror header fields (they are regenerated from the fields,
// so an edited field is not undone) and records about the source's encoding.
func droppedRecord(k string) bool {
	switch k {
	case "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "hdrcharset":
		return true
	}
	return strings.HasPrefix(k, "GNU.sparse.")
}

const bufSize = 1 << 20

// typeRegA is the pre-POSIX regular file type ('\x00') that old archives
// still hold (tar.TypeRegA, deprecated for writing only).
const typeRegA byte = '\x00'

// Rewrite copies the tar in src to dst through tf. dst receives a complete
// tar (with its end-of-archive blocks) when Rewrite returns nil.
func Rewrite(dst io.Writer, src io.Reader, tf Transform) (Counts, error) {
	var c Counts
	bw := bufio.NewWriterSize(dst, bufSize)
	tw := tar.NewWriter(bw)
	buf := make([]byte, 256<<10)
	err := walk(src, func(m *Member, tr *tar.Reader) error {
		c.Members++
		if tf != nil && !tf(m) {
			c.Dropped++
			return nil
		}
		h := m.Header
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("write header of %q: %w", h.Name, err)
		}
		if hasContent(h.Typeflag) && h.Size > 0 {
			n, err := io.CopyBuffer(tw, io.LimitReader(tr, h.Size), buf)
			if err != nil {
				return fmt.Errorf("copy content of %q: %w", h.Name, err)
			}
			if n != h.Size {
				return fmt.Errorf("copy content of %q: %w after %d of %d bytes", h.Name, io.ErrUnexpectedEOF, n, h.Size)
			}
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	if err := tw.Close(); err != nil {
		return c, fmt.Errorf("finish tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return c, fmt.Errorf("finish tar: %w", err)
	}
	return c, nil
}

// Walk calls fn for every member of the tar in src, headers prepared as
// Rewrite prepares them. Content is skipped.
func Walk(src io.Reader, fn func(m *Member) error) error {
	return walk(src, func(m *Member, _ *tar.Reader) error { return fn(m) })
}

func walk(src io.Reader, fn func(m *Member, tr *tar.Reader) error) error {
	tr := tar.NewReader(bufio.NewReaderSize(src, bufSize))
	var globals map[string]string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar header: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			if globals == nil {
				globals = map[string]string{}
			}
			maps.Copy(globals, hdr.PAXRecords)
			continue
		}
		m, err := prepare(hdr, globals)
		if err != nil {
			return err
		}
		if err := fn(m, tr); err != nil {
			return err
		}
	}
}

func prepare(hdr *tar.Header, globals map[string]string) (*Member, error) {
	h := *hdr
	recs := make(map[string]string, len(globals)+len(hdr.PAXRecords))
	maps.Copy(recs, globals)
	maps.Copy(recs, hdr.PAXRecords)
	h.PAXRecords = nil
	//lint:ignore SA1019 the reader fills it; PAXRecords carry the xattrs.
	h.Xattrs = nil
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	for k, v := range recs {
		switch {
		case droppedRecord(k):
			continue
		case k == "atime" || k == "ctime":
			ts, err := parsePAXTime(v)
			if err != nil {
				return nil, fmt.Errorf("member %q: PAX record %s=%q: %w", hdr.Name, k, v, err)
			}
			if k == "atime" {
				h.AccessTime = ts
			} else {
				h.ChangeTime = ts
			}
			continue
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[k] = v
	}

	isDir := h.Typeflag == tar.TypeDir ||
		((h.Typeflag == typeRegA || h.Typeflag == tar.TypeReg) && strings.HasSuffix(h.Name, "/"))
	name := h.Name
	switch {
	case isDir:
		h.Typeflag = tar.TypeDir
		h.Size = 0
		name = strings.TrimRight(h.Name, "/")
		if name == "" {
			name = h.Name
		} else {
			h.Name = name + "/"
		}
	case h.Typeflag == tar.TypeGNUSparse || h.Typeflag == typeRegA:
		h.Typeflag = tar.TypeReg
	case !hasContent(h.Typeflag):
		h.Size = 0
	}
	h.Format = tar.FormatPAX // USTAR when it fits, else PAX (see the doc)
	return &Member{Header: &h, Name: name}, nil
}

// hasContent reports whether members of type t carry data after the header.
func hasContent(t byte) bool {
	switch t {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return false
	}
	return true
}

// parsePAXTime parses a PAX time record: seconds, optionally negative, with
// an optional fraction.
func parsePAXTime(s string) (time.Time, error) {
	ss, sn, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(ss, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time: %w", err)
	}
	if sn == "" {
		return time.Unix(secs, 0), nil
	}
	if strings.Trim(sn, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("invalid time fraction %q", sn)
	}
	if len(sn) < 9 {
		sn += strings.Repeat("0", 9-len(sn))
	}
	nsecs, _ := strconv.ParseInt(sn[:9], 10, 64)
	if strings.HasPrefix(ss, "-") {
		return time.Unix(secs, -nsecs), nil
	}
	return time.Unix(secs, nsecs), nil
}

// TypeName is the kind of a member as the search filter prints it: file,
// directory, symlink, hardlink, fifo, character device, block device or
// unknown (Python tarfile's is* tests, in that order).
func TypeName(h *tar.Header) string {
	switch h.Typeflag {
	case tar.TypeReg, typeRegA, tar.TypeCont, tar.TypeGNUSparse:
		return "file"
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	}
	return "unknown"
}
