package quay

import "errors"

// ErrNoNamespace is a quay:// URI without an organization.
var ErrNoNamespace = errors.New("quay:// URI requires a namespace/organization")

// ErrSince is a since option that is not a YYYY-MM-DD date.
var ErrSince = errors.New("invalid since date")
