// Package quay is the quay:// source: it resolves a Quay namespace, a
// repository-name glob and a tag into the list of images to pull, through
// the Quay API client of package transport.
//
// ParseURI reads quay://ORG[/GLOB[:TAG]][?token=&since=YYYY-MM-DD&host=&insecure=]
// (glob "*" and tag "latest" by default; the tag is split at the last ':'),
// with the original occystrap's error texts. Resolve lists the namespace's
// repositories (every next_page; with since, last_modified is asked for and
// repositories modified before since, or never, are dropped), keeps the
// names the glob matches (fnmatch, on the name within the namespace), then
// checks the tag of each, as each page comes, in Workers goroutines that
// take the names from a queue (a 404 skips the repository, a 401 stops with
// ErrQuayAuth's text, a tag pushed before since is skipped; the first
// failed check stops the listing and the other checks), and returns the images in sorted order (ResolveFunc hands
// them over in that order as they are checked, through a stage.Ordered).
// Pulling them is the registry source's job (package sources/registry);
// cmd runs one per image.
//
// Everything here is safe for concurrent use; Resolve owns the goroutines it
// starts and returns only after they have ended.
package quay
