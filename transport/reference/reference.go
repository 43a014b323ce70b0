// Package reference is occystrap's one image-reference parser, as
// go-containerregistry's pkg/name: [HOST/]NAME[:TAG][@DIGEST] read by
// docker's rules (a first component that is not a host is part of a Docker
// Hub repository; docker.io means registry-1.docker.io; a Docker Hub
// repository of one component is in library/), with the digest split off
// and checked. It imports nothing of this module; everything in it is a
// pure function of its input, safe for concurrent use.
package reference

import (
	"fmt"
	"regexp"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// DockerHub is the registry host that docker.io names are pulled from.
const DockerHub = "registry-1.docker.io"

// DefaultTag is the tag of a reference that names neither tag nor digest.
const DefaultTag = "latest"

// Reference is one image in one registry.
type Reference struct {
	// Host is the registry's host[:port] ("" from ParseName).
	Host string
	// Repo is the repository path ("library/busybox", "org/app").
	Repo string
	// Tag and Digest are as given; either or both may be empty.
	Tag    string
	Digest digest.Digest
}

// Parse reads [HOST/]NAME[:TAG][@DIGEST] by docker's rules: the first
// component is the registry host when a '/' follows it and it has a '.' or
// a ':' or is localhost; otherwise the name is Docker Hub's. docker.io and
// index.docker.io mean registry-1.docker.io, and a Docker Hub repository of
// one component is in library/. So busybox is registry-1.docker.io and
// library/busybox, and quay.io/org/app:v1 is quay.io and org/app, tag v1.
func Parse(s string) (Reference, error) {
	host, rest, ok := strings.Cut(s, "/")
	if !ok || !isHost(host) {
		host, rest = DockerHub, s
	}
	if host == "docker.io" || host == "index.docker.io" {
		host = DockerHub
	}
	r, err := ParseName(rest)
	if err != nil {
		return Reference{}, err
	}
	r.Host = host
	if host == DockerHub && !strings.Contains(r.Repo, "/") {
		r.Repo = "library/" + r.Repo
	}
	return r, nil
}

// ParseName reads NAME[:TAG][@DIGEST] without a host: the digest follows
// the last '@', the tag the last ':' after the last '/'. A digest must be
// valid; the name and tag are not checked here (the registry answers for
// them).
func ParseName(s string) (Reference, error) {
	var r Reference
	if i := strings.LastIndex(s, "@"); i >= 0 {
		d, err := digest.Parse(s[i+1:])
		if err != nil {
			return Reference{}, fmt.Errorf("reference %q: digest %q: %w", s, s[i+1:], err)
		}
		s, r.Digest = s[:i], d
	}
	if i := strings.LastIndex(s, ":"); i >= 0 && !strings.Contains(s[i:], "/") {
		s, r.Tag = s[:i], s[i+1:]
	}
	r.Repo = s
	return r, nil
}

// isHost reports whether a reference's first component names a registry
// host, as docker decides it.
func isHost(s string) bool { return strings.ContainsAny(s, ".:") || s == "localhost" }

// Identifier is what names the image in the repository: the digest when
// there is one, else the tag, else DefaultTag.
func (r Reference) Identifier() string {
	switch {
	case r.Digest != "":
		return r.Digest.String()
	case r.Tag != "":
		return r.Tag
	}
	return DefaultTag
}

// Path is REPO[:TAG][@DIGEST], as given (no default tag added).
func (r Reference) Path() string {
	p := r.Repo
	if r.Tag != "" {
		p += ":" + r.Tag
	}
	if r.Digest != "" {
		p += "@" + r.Digest.String()
	}
	return p
}

// String is HOST/REPO[:TAG][@DIGEST] (REPO... when there is no host).
func (r Reference) String() string {
	if r.Host == "" {
		return r.Path()
	}
	return r.Host + "/" + r.Path()
}

// dockerReference matches what docker pull takes:
// [HOST[:PORT]/]NAME[/NAME...][:TAG][@DIGEST], lowercase names.
var dockerReference = regexp.MustCompile(`^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)

// Looks reports whether s is written as docker pull takes a reference.
func Looks(s string) bool { return dockerReference.MatchString(s) }

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
