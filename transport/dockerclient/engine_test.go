package dockerclient

import (
	"testing"

	"github.com/occystrap/occystrap/stage"
)

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

func TestParseImage(t *testing.T) {
	tests := []struct {
		in   string
		want stage.Image
	}{
		{"busybox", stage.Image{Name: "busybox", Tag: "latest"}},
		{"busybox:1.36", stage.Image{Name: "busybox", Tag: "1.36"}},
		{"localhost:5000/app", stage.Image{Name: "localhost:5000/app", Tag: "latest"}},
		{"localhost:5000/app:v1", stage.Image{Name: "localhost:5000/app", Tag: "v1"}},
	}
	for _, tc := range tests {
		if got := ParseImage(tc.in); got != tc.want {
			t.Errorf("ParseImage(%q) = %+v; want %+v", tc.in, got, tc.want)
		}
	}
}
