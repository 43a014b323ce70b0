package beneath

import (
	"errors"
	"io/fs"
	"os"
)

// RemoveMatching removes the entries directly in root/rel (rel "." for
// root itself) whose names match (for example tempname.Stale: the
// temporaries a killed run left) and, down to depth more levels, those in
// its subdirectories for which descend is true (nil: none). It returns the paths removed,
// relative to root. A missing directory is not an error; symlinks are
// neither followed nor descended into.
func RemoveMatching(root, rel string, depth int, match func(name string) bool, descend func(rel, name string) bool) ([]string, error) {
	var f *os.File
	var err error
	if rel == "." {
		f, err = os.Open(root)
	} else {
		f, err = Open(root, rel)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		p := e.Name()
		if rel != "." {
			p = rel + "/" + e.Name()
		}
		if match(e.Name()) {
			if err := RemoveAll(root, p); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, p)
			continue
		}
		if depth > 0 && e.Type().IsDir() && descend != nil && descend(rel, e.Name()) {
			r, err := RemoveMatching(root, p, depth-1, match, descend)
			removed = append(removed, r...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return removed, errors.Join(errs...)
}
