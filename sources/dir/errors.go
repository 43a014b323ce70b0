package dir

import "errors"

// ErrNoSuchImage is returned (wrapped, naming the image and the directory)
// when the catalog does not list the image and tag.
var ErrNoSuchImage = errors.New("no such image in the directory's catalog")
