package proxy

import "errors"

var (
	// ErrManifestList is a manifest list or index pushed into the proxy,
	// which handles single-platform images only.
	ErrManifestList = errors.New("manifest lists are not supported by the proxy")
	// ErrBlobUnknown is a manifest naming a blob that was not pushed.
	ErrBlobUnknown = errors.New("blob not pushed")
	// ErrLayerCount is a config whose diff_ids do not match the manifest's
	// layers.
	ErrLayerCount = errors.New("the config's diff_ids do not match the manifest's layers")
	// ErrClosed is a request after the proxy closed.
	ErrClosed = errors.New("proxy closed")
)
