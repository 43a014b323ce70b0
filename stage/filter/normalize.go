package filter

import (
	"time"

	"github.com/occystrap/occystrap/internal/tarfmt"
)

// NewNormalizeTimestamps returns the normalize-timestamps filter: every
// member's mtime becomes ts (unix seconds), and the atime, ctime and
// LIBARCHIVE.creationtime records are dropped besides the records every
// rewrite drops (see tarfmt). Other records (xattrs, ACLs) are kept.
func NewNormalizeTimestamps(ts int64, opts Options) *Rewriter {
	mtime := time.Unix(ts, 0)
	return NewRewriter("normalize-timestamps", func(m *tarfmt.Member) bool {
		h := m.Header
		h.ModTime = mtime
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		delete(h.PAXRecords, "LIBARCHIVE.creationtime")
		return true
	}, opts)
}
