// Package tarfmt reads and rewrites layer tars member by member, streaming:
// no member's content is held in memory.
//
// Rewrite copies a tar through a Transform that may drop a member or change
// its header. It writes members as the original occystrap's rewriting filters
// do: PAX records that mirror a header field or describe the source's
// encoding (path, linkpath, size, uid, gid, uname, gname, mtime, hdrcharset,
// GNU.sparse.*) are dropped and regenerated from the fields when needed;
// other records (SCHILY.xattr.* file capabilities, ACLs, atime, ctime, ...)
// are kept; global PAX headers are folded into every later member, as
// Python's tarfile reads them; old-style GNU sparse members (type 'S') become
// regular files holding their expanded data; directories are named with a
// trailing '/'. Each member is written as USTAR unless it needs PAX (records
// left, an owner name over 32 bytes, a fractional or out-of-range time,
// non-ASCII text, a field that overflows USTAR). The output is a pure
// function of the input and the Transform, so it is byte-stable.
//
// Walk reads members without writing, for filters that only look; Check
// reads a tar to its end, for outputs that verify what they wrote. Functions
// here are safe for concurrent use on different readers and writers.
package tarfmt
