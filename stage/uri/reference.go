package uri

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/occystrap/occystrap/internal/redact"
)

// DockerHub is the registry host that docker.io names are pulled from.
const DockerHub = "registry-1.docker.io"

// Registry applies docker's reference conventions to a registry:// URI and
// returns the registry host and "REPO[:TAG|@DIGEST]": a first path
// component that is not a host (no '.' or ':', not localhost) is part of a
// Docker Hub repository, docker.io and index.docker.io mean
// registry-1.docker.io, and a Docker Hub repository of one component is in
// library/. So registry://busybox is registry-1.docker.io and
// library/busybox, and registry://quay.io/org/app:v1 is quay.io and
// org/app:v1.
func (u URI) Registry() (host, ref string, err error) {
	host, ref = u.Host, u.Path
	switch {
	case host == "":
		return "", "", fmt.Errorf("registry URI %q: expected registry://[HOST/]IMAGE[:TAG]", redact.URI(u.Raw))
	case ref == "":
		host, ref = DockerHub, host
	case !isRegistryHost(host):
		host, ref = DockerHub, host+"/"+ref
	}
	if host == "docker.io" || host == "index.docker.io" {
		host = DockerHub
	}
	if host == DockerHub {
		name, _, _ := strings.Cut(ref, "@")
		if i := strings.LastIndex(name, ":"); i >= 0 {
			name = name[:i]
		}
		if !strings.Contains(name, "/") {
			ref = "library/" + ref
		}
	}
	return host, ref, nil
}

// isRegistryHost reports whether a reference's first component names a
// registry host, as docker decides it.
func isRegistryHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost"
}

// dockerReference matches what docker pull takes:
// [HOST[:PORT]/]NAME[/NAME...][:TAG][@DIGEST], lowercase names.
var dockerReference = regexp.MustCompile(`^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)

// suggestion is the hint for a source or destination given as a docker
// reference instead of a URI.
func suggestion(s string) string {
	if strings.Contains(s, "://") {
		return ""
	}
	if strings.HasSuffix(s, ".tar") {
		return fmt.Sprintf("; for an archive, write tar://%s", s)
	}
	if !dockerReference.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("; for an image in a registry, write registry://%s", s)
}

// The distribution spec's grammar for one path component of a repository
// name, and for a tag.
var (
	nameComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	tagGrammar    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ValidNameComponent reports whether s is one path component of a
// repository name as the distribution spec allows it. Names a remote API
// lists (Quay repositories) are checked with it before they are used or
// printed: a hostile listing cannot smuggle paths or control characters.
func ValidNameComponent(s string) bool { return len(s) <= 255 && nameComponent.MatchString(s) }

// ValidTag reports whether s is a tag as the distribution spec allows it.
func ValidTag(s string) bool { return tagGrammar.MatchString(s) }
