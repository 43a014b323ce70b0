// Package inflate decompresses gzip layers with the fastest inflater the
// machine has: Intel's ISA-L when it is there, klauspost/compress
// otherwise. ISA-L runs in process (libisal through cgo, isal_cgo.go) in a
// build with the isal tag, and as an `igzip -d -c` subprocess (Debian's
// `isal` package, on PATH) in the default, pure-Go build. The choice is
// made once per run (New, from OCCYSTRAP_INFLATE=go|isal|auto) and the
// same Inflater is handed to every place that decompresses a layer, so a
// run never mixes them by accident; Name says which runs ("isal-cgo",
// "isal" or "go").
//
// All give the same bytes for a valid stream (one gzip member or several
// concatenated) and all fail on a truncated or corrupt one, on a wrong
// CRC or length, and on data after the last member; an ISA-L failure wraps
// ErrCorrupt. libisal checks each member's header and trailer, and any byte
// after a member starts the next one. igzip itself ignores what follows
// the last member, so the igzip reader checks the stream's last 8 bytes
// against the CRC-32 and length of what it gave (see igzipReader.check).
//
// An igzip process belongs to the reader that started it: Close kills it
// if it still runs and waits for it (no zombie); the context given to
// Gunzip kills it when the context ends; and Inflater.Close kills any that
// are left when the run ends. On Linux a process is also killed if
// occystrap dies (PR_SET_PDEATHSIG). The goroutine that feeds igzip's stdin
// is owned by its reader and waited for by Close. The in-process reader
// has no process or goroutine: it checks its context and the Inflater's
// Close each time it reads its source, and frees its C state at the end of
// the stream or on Close.
//
// An Inflater is safe for concurrent use; a nil *Inflater inflates with Go.
// A reader is used by one goroutine at a time, as any io.Reader.
package inflate
