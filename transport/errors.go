package transport

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNotFound is a 404 from the registry.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is a 401 or 403 that authentication could not cure.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDigestMismatch is a blob whose content does not hash to its digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch is a blob longer or shorter than its descriptor says.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrStatus is any other unexpected HTTP status.
	ErrStatus = errors.New("unexpected HTTP status")
	// ErrTooLarge is a document (manifest, index, config, token response,
	// Quay API page) larger than its limit or than its declared size.
	ErrTooLarge = errors.New("too large")
	// ErrStalled is a response body that sent nothing for the stall
	// timeout (Options.StallTimeout).
	ErrStalled = errors.New("stalled")
	// ErrOtherHost is a 401 from a host a request was redirected to: the
	// registry's credentials are not offered to it.
	ErrOtherHost = errors.New("credentials are not sent to another host")
)
