package main

import (
	"strings"
	"testing"

	"github.com/occystrap/occystrap/stage/uri"
)

func TestRegistryAccess(t *testing.T) {
	a := &app{g: &Globals{Parallel: 4, Insecure: false, Username: "g", Password: "gp"}}
	for _, tc := range []struct {
		in         string
		user, pass string
		insecure   bool
		workers    int
		wantErr    bool
	}{
		{"registry://h/i", "g", "gp", false, 4, false},
		{"registry://h/i?username=u&password=p&insecure=yes&max_workers=9", "u", "p", true, 9, false},
		{"registry://h/i?max_workers=many", "", "", false, 0, true},
		{"registry://h/i?insecure=maybe", "", "", false, 0, true},
	} {
		u, err := uri.ParseInput(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		ro, w, err := registryAccess(a, u)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: err %v", tc.in, err)
		}
		if tc.wantErr {
			continue
		}
		if ro.Username != tc.user || ro.Password != tc.pass || ro.Insecure != tc.insecure || w != tc.workers {
			t.Errorf("%s: %+v workers %d", tc.in, ro, w)
		}
	}
}

func TestRegistryInputRefusesUnknownOptions(t *testing.T) {
	code, _, stderr := occystrap(t, "--log-format", "console", "process", "registry://127.0.0.1:1/i:t?achitecture=arm64", "dir://"+t.TempDir())
	if code != 2 || !strings.Contains(stderr, `unknown option "achitecture"`) {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
}
