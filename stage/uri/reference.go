package uri

import (
	"fmt"
	"strings"

	"github.com/occystrap/occystrap/internal/redact"
	"github.com/occystrap/occystrap/transport/reference"
)

// Reference reads a registry:// URI as an image reference, by docker's
// rules (see package transport/reference): registry://busybox is
// registry-1.docker.io and library/busybox, and registry://quay.io/org/app:v1
// is quay.io and org/app, tag v1.
func (u URI) Reference() (reference.Reference, error) {
	if u.Host == "" {
		return reference.Reference{}, fmt.Errorf("registry URI %q: expected registry://[HOST/]IMAGE[:TAG]", redact.URI(u.Raw))
	}
	s := u.Host
	if u.Path != "" {
		s += "/" + u.Path
	}
	r, err := reference.Parse(s)
	if err != nil {
		return reference.Reference{}, fmt.Errorf("registry URI %q: %w", redact.URI(u.Raw), err)
	}
	return r, nil
}

// Registry is Reference as the registry host and "REPO[:TAG|@DIGEST]".
func (u URI) Registry() (host, ref string, err error) {
	r, err := u.Reference()
	if err != nil {
		return "", "", err
	}
	return r.Host, r.Path(), nil
}

// suggestion is the hint for a source or destination given as a docker
// reference instead of a URI.
func suggestion(s string) string {
	if strings.Contains(s, "://") {
		return ""
	}
	if strings.HasSuffix(s, ".tar") {
		return fmt.Sprintf("; for an archive, write tar://%s", s)
	}
	if !reference.Looks(s) {
		return ""
	}
	return fmt.Sprintf("; for an image in a registry, write registry://%s", s)
}
