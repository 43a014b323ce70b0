package uri

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want URI
	}{
		{"tar://foo.tar", URI{Scheme: "tar", Path: "foo.tar", Options: map[string]any{}}},
		{"tar:foo.tar", URI{Scheme: "tar", Path: "foo.tar", Options: map[string]any{}}},
		{"file://./x.tar", URI{Scheme: "tar", Path: "./x.tar", Options: map[string]any{}}},
		{"TAR://localhost/p", URI{Scheme: "tar", Path: "/p", Options: map[string]any{}}},
		{"tar:///abs/x.tar", URI{Scheme: "tar", Path: "/abs/x.tar", Options: map[string]any{}}},
		{"registry://quay.io/openstack.kolla/nova-api:2025.1?arch=386&insecure=yes",
			URI{Scheme: "registry", Host: "quay.io", Path: "openstack.kolla/nova-api:2025.1", Options: map[string]any{"arch": 386, "insecure": true}}},
		{"registry://localhost:5000/busybox?os=linux&os=windows",
			URI{Scheme: "registry", Host: "localhost:5000", Path: "busybox", Options: map[string]any{"os": []any{"linux", "windows"}}}},
		{"quay:openstack.kolla/*:tag?since=2026-03-01",
			URI{Scheme: "quay", Host: "openstack.kolla", Path: "*:tag", Options: map[string]any{"since": "2026-03-01"}}},
		{"docker://busybox:latest?socket=/run/d.sock", URI{Scheme: "docker", Host: "busybox:latest", Options: map[string]any{"socket": "/run/d.sock"}}},
		{"registry://h/i?x=&y=0&z=No", URI{Scheme: "registry", Host: "h", Path: "i", Options: map[string]any{"y": false, "z": false}}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseInput(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Raw = tc.in
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseOutput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want URI
	}{
		{"dir://./o", URI{Scheme: "dir", Path: "./o", Options: map[string]any{}}},
		{"directory://out?unique_names=true&expand=1", URI{Scheme: "dir", Path: "out", Options: map[string]any{"unique_names": true, "expand": true}}},
		{"oci:bundle", URI{Scheme: "oci", Path: "bundle", Options: map[string]any{}}},
		{"mounts:///var/m", URI{Scheme: "mounts", Path: "/var/m", Options: map[string]any{}}},
		{"registry://reg:5000/prefix/img:tag?compression=zstd", URI{Scheme: "registry", Host: "reg:5000", Path: "prefix/img:tag", Options: map[string]any{"compression": "zstd"}}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseOutput(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Raw = tc.in
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, wantSub string
		output      bool
	}{
		{"foo.tar", "invalid input URI \"foo.tar\"", false},
		{"ftp://x", "Unknown input scheme \"ftp\"", false},
		{"dir://x", "Unknown input scheme \"dir\"", false},
		{"quay://ns", "Unknown output scheme \"quay\"", true},
		{"registry://h/i?a=%zz", "invalid query in input URI", false},
		{":x", "invalid input URI", false},
	} {
		var err error
		if tc.output {
			_, err = ParseOutput(tc.in)
		} else {
			_, err = ParseInput(tc.in)
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantSub) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.in, err, tc.wantSub)
		}
	}
}

func TestOptionAccessors(t *testing.T) {
	t.Parallel()
	u, err := ParseOutput("dir://o?unique_names=yes&expand=maybe&n=12&s=abc")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := u.Bool("unique_names", false); err != nil || !b {
		t.Errorf("unique_names = %v, %v", b, err)
	}
	if b, err := u.Bool("absent", true); err != nil || !b {
		t.Errorf("absent = %v, %v", b, err)
	}
	if _, err := u.Bool("expand", false); err == nil || !strings.Contains(err.Error(), `option expand of dir://o?unique_names=yes&expand=maybe&n=12&s=abc: expected true/false`) {
		t.Errorf("expand err = %v", err)
	}
	if n, err := u.Int("n", 0); err != nil || n != 12 {
		t.Errorf("n = %v, %v", n, err)
	}
	if _, err := u.Int("s", 0); err == nil {
		t.Error("s as int: no error")
	}
	if s, ok := u.String("n"); !ok || s != "12" {
		t.Errorf("n as string = %q %v", s, ok)
	}
}

func TestParseFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		name    string
		opts    map[string]any
		wantErr string
	}{
		{"normalize-timestamps", "normalize-timestamps", map[string]any{}, ""},
		{"Normalize_Timestamps:ts=1700000000", "normalize-timestamps", map[string]any{"ts": 1700000000}, ""},
		{"exclude:pattern=*.pyc", "exclude", map[string]any{"pattern": "*.pyc"}, ""},
		{"exclude:pattern=a,b,c", "exclude", map[string]any{"pattern": "a,b,c"}, ""},
		{"search:pattern=*.conf,script_friendly=true", "search", map[string]any{"pattern": "*.conf", "script_friendly": true}, ""},
		{"inspect:file=/tmp/x=y.jsonl", "inspect", map[string]any{"file": "/tmp/x=y.jsonl"}, ""},
		{"exclude:oops", "", nil, "Invalid filter option (missing =)"},
		{":x=1", "", nil, "missing filter name"},
		{"exclude:=v", "", nil, "has no name"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Name != tc.name {
				t.Errorf("name = %q, want %q", f.Name, tc.name)
			}
			if d := cmp.Diff(tc.opts, f.Options); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
	f, _ := ParseFilter("search:pattern=x,regex=true,bogus=1")
	if d := cmp.Diff([]string{"bogus"}, f.Unknown("pattern", "regex", "script_friendly")); d != "" {
		t.Errorf("Unknown: %s", d)
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"tar://foo.tar", "registry://h:5000/a/b:c?x=1&x=2", "quay:ns/*:t?since=2020-01-01", "dir://./o?expand=true", "file:///", "%", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (URI, error){ParseInput, ParseOutput} {
			u, err := parse(s)
			if err != nil {
				continue
			}
			if u.Scheme == "" || u.Options == nil {
				t.Fatalf("%q parsed to %+v with no scheme or options", s, u)
			}
			if fileLike[u.Scheme] && u.Host != "" {
				t.Fatalf("%q: file-like scheme kept a host %q", s, u.Host)
			}
			// Parsing is a pure function.
			again, err := parse(s)
			if err != nil || !cmp.Equal(u, again) {
				t.Fatalf("%q: second parse differs", s)
			}
		}
	})
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"exclude:pattern=a,b", "search:pattern=*.conf,regex=false", "normalize_timestamps:ts=0", "x:=,", ":", "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			return
		}
		if flt.Name == "" || strings.ContainsAny(flt.Name, "_") || flt.Name != strings.ToLower(flt.Name) {
			t.Fatalf("%q: bad name %q", s, flt.Name)
		}
		if len(flt.Keys) != len(flt.Options) {
			t.Fatalf("%q: %d keys but %d options", s, len(flt.Keys), len(flt.Options))
		}
	})
}

func TestRegistryReference(t *testing.T) {
	for _, tc := range []struct{ in, host, ref, err string }{
		{in: "registry://busybox", host: "registry-1.docker.io", ref: "library/busybox"},
		{in: "registry://busybox:latest", host: "registry-1.docker.io", ref: "library/busybox:latest"},
		{in: "registry://library/busybox", host: "registry-1.docker.io", ref: "library/busybox"},
		{in: "registry://bitnami/redis:7", host: "registry-1.docker.io", ref: "bitnami/redis:7"},
		{in: "registry://docker.io/busybox:1.36", host: "registry-1.docker.io", ref: "library/busybox:1.36"},
		{in: "registry://index.docker.io/library/busybox", host: "registry-1.docker.io", ref: "library/busybox"},
		{in: "registry://docker.io/busybox@sha256:" + strings.Repeat("a", 64), host: "registry-1.docker.io", ref: "library/busybox@sha256:" + strings.Repeat("a", 64)},
		{in: "registry://quay.io/org/app:v1", host: "quay.io", ref: "org/app:v1"},
		{in: "registry://localhost/app", host: "localhost", ref: "app"},
		{in: "registry://127.0.0.1:5000/demo/app:v1", host: "127.0.0.1:5000", ref: "demo/app:v1"},
		{in: "registry://", err: "expected registry://[HOST/]IMAGE[:TAG]"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := ParseInput(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			host, ref, err := u.Registry()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || host != tc.host || ref != tc.ref {
				t.Errorf("= %q, %q, %v; want %q, %q", host, ref, err, tc.host, tc.ref)
			}
		})
	}
}

func TestBareReferenceSuggestsRegistry(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5000/demo/app:v1", "write registry://127.0.0.1:5000/demo/app:v1"},
		{"busybox:latest", "write registry://busybox:latest"},
		{"quay.io/org/app", "write registry://quay.io/org/app"},
		{"busybox", "write registry://busybox"},
		{"image.tar", "write tar://image.tar"},
	} {
		for _, parse := range []func(string) (URI, error){ParseInput, ParseOutput} {
			_, err := parse(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: %v, want a hint %q", tc.in, err, tc.want)
			}
		}
	}
	if _, err := ParseInput("nosuch://x/y"); err == nil || strings.Contains(err.Error(), "write registry://") {
		t.Errorf("a URI with an unknown scheme got a hint: %v", err)
	}
}
