package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"testing"
)

func TestURI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"registry://h/i:t?username=alice&password=s3cret", "registry://h/i:t?username=alice&password=REDACTED"},
		{"quay://quay.io/ns?token=abc123&since=2024", "quay://quay.io/ns?token=REDACTED&since=2024"},
		{"registry://h/i?PASSWORD=x&max_workers=2", "registry://h/i?PASSWORD=REDACTED&max_workers=2"},
		{"registry://h/i?registry_token=x", "registry://h/i?registry_token=REDACTED"},
		{"https://alice:s3cret@h:5000/v2/", "https://alice:REDACTED@h:5000/v2/"},
		{"dir://out?unique_names=true", "dir://out?unique_names=true"},
		{"registry://localhost:5000/busybox:latest", "registry://localhost:5000/busybox:latest"},
		{"docker://busybox:latest@sha256:abcd", "docker://busybox:latest@sha256:abcd"},
		{"tar://x.tar", "tar://x.tar"},
		{"registry://h/i?password=a#frag", "registry://h/i?password=REDACTED#frag"},
	} {
		if got := URI(tc.in); got != tc.want {
			t.Errorf("URI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`invalid input URI "registry://h/i?password=s3cret&x=1": bad`, `invalid input URI "registry://h/i?password=REDACTED&x=1": bad`},
		{`{"source":"quay://q/ns?token=abc"}`, `{"source":"quay://q/ns?token=REDACTED"}`},
		{"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "Authorization: Bearer REDACTED"},
		{"Basic YWxpY2U6czNjcmV0", "Basic REDACTED"},
		{"token for h: the bearer challenge has no realm", "token for h: the bearer challenge has no realm"},
		{`{"password":"s\"3cret","user":"a"}`, `{"password":"REDACTED","user":"a"}`},
		{"fetch https://alice:pw@h/v2/: EOF", "fetch https://alice:REDACTED@h/v2/: EOF"},
		{"nothing to see here", "nothing to see here"},
		{"Processing image busybox:latest", "Processing image busybox:latest"},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHeader(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Authorization", "Bearer abc")
	h.Set("Cookie", "s=1")
	h.Set("Accept", "application/json")
	got := Header(h)
	if got.Get("Authorization") != "Bearer "+Mask || got.Get("Cookie") != Mask || got.Get("Accept") != "application/json" {
		t.Errorf("Header = %v", got)
	}
	if h.Get("Authorization") != "Bearer abc" {
		t.Errorf("Header changed its argument: %v", h)
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	base := fmt.Errorf("open registry://h/i?password=s3cret: %w", fs.ErrNotExist)
	err := Error(base)
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Error() = %q", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is lost the wrapped error")
	}
	if Error(nil) != nil {
		t.Errorf("Error(nil) != nil")
	}
}

func TestWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := NewWriter(&buf, "hunter2x")
	w.Add("p@ss w\"rd")
	lines := []string{
		"login with hunter2x\n",
		`{"msg":"bad p@ss w\"rd"}` + "\n",
		"uri registry://h/i?u=a&p=p%40ss%20w%22rd\n",
		"registry://h/i?password=zzz\n",
	}
	for _, l := range lines {
		n, err := w.Write([]byte(l))
		if err != nil || n != len(l) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	out := buf.String()
	for _, s := range []string{"hunter2x", `p@ss w\"rd`, "p%40ss", "zzz"} {
		if strings.Contains(out, s) {
			t.Errorf("output holds %q:\n%s", s, out)
		}
	}

	buf.Reset()
	lw := NewLiteralWriter(&buf, "hunter2x")
	_, _ = lw.Write([]byte("etc/password=keep hunter2x\n"))
	if got := buf.String(); got != "etc/password=keep REDACTED\n" {
		t.Errorf("literal writer wrote %q", got)
	}
}

func FuzzText(f *testing.F) {
	f.Add("registry://alice:pw@h/i?password=s3cret")
	f.Add("Bearer abc.def")
	f.Fuzz(func(t *testing.T, s string) {
		out := Text(s)
		if Text(out) != out {
			t.Errorf("Text is not idempotent on %q: %q then %q", s, out, Text(out))
		}
	})
}

func TestURISecrets(t *testing.T) {
	t.Parallel()
	got := URISecrets("registry://alice:pw1@h/i?username=bob&password=s%33cret&token=tk")
	want := []string{"pw1", "s%33cret", "s3cret", "tk"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("URISecrets = %q, want %q", got, want)
	}
}
