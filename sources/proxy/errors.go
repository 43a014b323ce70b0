package proxy

import (
	"errors"

	"github.com/occystrap/occystrap/stage"
)

var (
	// ErrUninterpretable is a pushed manifest the proxy cannot read layer
	// by layer: an index, an artifact, a config that is not an image
	// config or whose diff_ids do not match the layers. Without a filter
	// that changes content it is forwarded byte for byte; with one it is
	// refused (400 MANIFEST_INVALID naming the filter).
	ErrUninterpretable = errors.New("not an image the proxy can read layer by layer")
	// ErrBlobUnknown is a manifest naming a blob neither pushed into the
	// repository nor held by the downstream.
	ErrBlobUnknown = errors.New("blob not pushed")
	// ErrClosed is a request after the proxy closed.
	ErrClosed = stage.Sentinel(stage.ErrClosed, "proxy closed")
)
