package reference

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
)

func TestParse(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		in   string
		want Reference
		id   string
		err  string
	}{
		{in: "busybox", want: Reference{Host: DockerHub, Repo: "library/busybox"}, id: "latest"},
		{in: "busybox:1.36", want: Reference{Host: DockerHub, Repo: "library/busybox", Tag: "1.36"}, id: "1.36"},
		{in: "bitnami/redis:7", want: Reference{Host: DockerHub, Repo: "bitnami/redis", Tag: "7"}, id: "7"},
		{in: "docker.io/busybox", want: Reference{Host: DockerHub, Repo: "library/busybox"}, id: "latest"},
		{in: "index.docker.io/library/busybox", want: Reference{Host: DockerHub, Repo: "library/busybox"}, id: "latest"},
		{in: "docker.io/busybox@" + d, want: Reference{Host: DockerHub, Repo: "library/busybox", Digest: digestOf(d)}, id: d},
		{in: "quay.io/org/app:v1@" + d, want: Reference{Host: "quay.io", Repo: "org/app", Tag: "v1", Digest: digestOf(d)}, id: d},
		{in: "localhost/app", want: Reference{Host: "localhost", Repo: "app"}, id: "latest"},
		{in: "127.0.0.1:5000/demo/app:v1", want: Reference{Host: "127.0.0.1:5000", Repo: "demo/app", Tag: "v1"}, id: "v1"},
		{in: "localhost:5000", want: Reference{Host: DockerHub, Repo: "library/localhost", Tag: "5000"}, id: "5000"},
		{in: "quay.io/org/app@sha256:beef", err: `digest "sha256:beef"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%q) error %v, want %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
			}
			if id := got.Identifier(); id != tc.id {
				t.Errorf("Identifier = %q, want %q", id, tc.id)
			}
		})
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }

func TestValid(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{"app": true, "my-app": true, "a__b": true, "App": false, "../x": false, "a\nb": false, "": false} {
		if got := ValidNameComponent(s); got != want {
			t.Errorf("ValidNameComponent(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"v1.2": true, "latest": true, "_x": true, ".x": false, "a/b": false, strings.Repeat("a", 129): false} {
		if got := ValidTag(s); got != want {
			t.Errorf("ValidTag(%q) = %v", s, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"busybox", "quay.io/org/app:v1", "localhost:5000/a@sha256:" + strings.Repeat("0", 64), "a:b:c", "/x", "@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if r.Host == "" || r.Identifier() == "" {
			t.Fatalf("%q: %+v", s, r)
		}
		if !Looks(s) {
			return
		}
		// A well-formed reference, once parsed and written out, reads
		// back the same.
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("%q: %q does not parse again: %v", s, r.String(), err)
		}
		if again != r {
			t.Fatalf("%q: %+v, then %+v from %q", s, r, again, r.String())
		}
	})
}
