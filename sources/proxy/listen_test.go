package proxy

import "testing"

func TestListenAddr(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"127.0.0.1:5050", "127.0.0.1:5050", ""},
		{"0.0.0.0", "0.0.0.0:5050", ""},
		{"localhost:6000", "localhost:6000", ""},
		{":7000", ":7000", ""},
		{"[::1]:7000", "[::1]:7000", ""},
		{"127.0.0.1:abc", "", "invalid port: abc"},
		{"127.0.0.1:70000", "", "invalid port: 70000"},
		{"127.0.0.1:", "", "invalid port: "},
	} {
		got, err := ListenAddr(tc.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tc.want || gotErr != tc.err {
			t.Errorf("ListenAddr(%q) = %q, %q; want %q, %q", tc.in, got, gotErr, tc.want, tc.err)
		}
	}
}

func TestParseUpstream(t *testing.T) {
	for _, tc := range []struct{ in, host, user, pass string }{
		{"registry.example.com", "registry.example.com", "", ""},
		{"u:p@r.example.com:5000", "r.example.com:5000", "u", "p"},
		{"u:p:q@host", "host", "u", "p:q"},                       // first ':' splits the credentials
		{"me@corp:s3cr@t@host/x", "host/x", "me@corp", "s3cr@t"}, // last '@' ends them
		{"user@host", "host", "user", ""},
	} {
		h, u, p := ParseUpstream(tc.in)
		if h != tc.host || u != tc.user || p != tc.pass {
			t.Errorf("ParseUpstream(%q) = %q %q %q, want %q %q %q", tc.in, h, u, p, tc.host, tc.user, tc.pass)
		}
	}
}
