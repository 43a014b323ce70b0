package inflate

import "errors"

var (
	// ErrUnavailable is returned by New for OCCYSTRAP_INFLATE=isal when
	// igzip cannot be found or does not work (or, in a build with the isal
	// tag, when libisal fails its probe).
	ErrUnavailable = errors.New("ISA-L igzip is not available")
	// ErrCorrupt wraps every failure of a gzip stream that igzip reports
	// (bad header, corrupt data, wrong CRC or length, truncation) or that
	// the end-of-stream check finds (data after the last member).
	ErrCorrupt = errors.New("corrupt gzip stream")
	// ErrClosed is returned by Gunzip once the Inflater is closed.
	ErrClosed = errors.New("inflater closed")
)
