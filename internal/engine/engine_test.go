package engine

import "testing"

func TestResolveSocket(t *testing.T) {
	tests := []struct {
		opt, host, want string
		err             bool
	}{
		{"", "", DefaultSocket, false},
		{"/run/d.sock", "unix:///other.sock", "/run/d.sock", false},
		{"", "unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock", false},
		{"", "tcp://127.0.0.1:2375", "", true},
		{"", "unix://", "", true},
	}
	for _, tc := range tests {
		got, err := ResolveSocket(tc.opt, tc.host)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ResolveSocket(%q, %q) = %q, %v; want %q, error %v", tc.opt, tc.host, got, err, tc.want, tc.err)
		}
	}
}
