package receiver

import (
	"errors"

	"github.com/occystrap/occystrap/stage"
)

var (
	// ErrClosed is a request to a closed Receiver, or an Ingest's refusal
	// of an upload because it closed (503 UNAVAILABLE).
	ErrClosed = stage.Sentinel(stage.ErrClosed, "registry closed")
	// ErrStorage marks an Ingest's failure of its own storage, not the
	// client's (500 UNKNOWN).
	ErrStorage = errors.New("registry storage")

	errUploadUnknown = errors.New("blob upload unknown")
	// errRange is a chunk that does not start at the end of the upload
	// (out of order, or a retry of a chunk already received).
	errRange    = errors.New("chunk does not start at the end of the upload")
	errMismatch = errors.New("digest mismatch")
)
