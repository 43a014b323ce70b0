package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/occystrap/occystrap/stage"
)

func TestMakeFilters(t *testing.T) {
	t.Parallel()
	a := &app{g: &Globals{Parallel: 2}, stdout: &bytes.Buffer{}}
	tests := []struct {
		name    string
		specs   []string
		wantErr string
		// names of the stages built, first given first
		want           []string
		changes, needs bool
	}{
		{"none", nil, "", nil, false, false},
		{"chain in order", []string{"Normalize_Timestamps:ts=5", "exclude:pattern=a,b,c", "search:pattern=*.conf,script-friendly=true", "inspect:file=/tmp/x.jsonl"},
			"", []string{"normalize-timestamps", "exclude", "search", "inspect"}, true, true},
		{"passthrough only", []string{"search:pattern=x,regex=yes", "inspect:file=f"}, "", []string{"search", "inspect"}, false, true},
		{"timestamp alias", []string{"normalize-timestamps:timestamp=7"}, "", []string{"normalize-timestamps"}, true, false},
		{"unknown filter", []string{"shrink"}, `unknown filter "shrink"`, nil, false, false},
		{"unknown option", []string{"exclude:pattern=a,color=red"}, "unknown option(s) color for filter exclude", nil, false, false},
		{"bad int", []string{"normalize-timestamps:ts=soon"}, "expected an integer", nil, false, false},
		{"exclude without pattern", []string{"exclude"}, "needs pattern=", nil, false, false},
		{"search without pattern", []string{"search:regex=true"}, "needs pattern=", nil, false, false},
		{"bad regex", []string{"search:pattern=(,regex=true"}, "invalid regular expression", nil, false, false},
		{"inspect without file", []string{"inspect"}, "needs file=", nil, false, false},
		{"missing =", []string{"exclude:a"}, "Invalid filter option (missing =)", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			facs, err := makeFilters(context.Background(), a, tt.specs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stages, err := buildFilters(facs, stage.Image{Name: "fixture/app", Tag: "v1"})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range stages {
				names = append(names, s.Properties().Name)
			}
			if strings.Join(names, " ") != strings.Join(tt.want, " ") {
				t.Errorf("stages %v, want %v", names, tt.want)
			}
			if changesContent(stages) != tt.changes || needsAllLayers(stages) != tt.needs {
				t.Errorf("changesContent %v needsAllLayers %v, want %v %v", changesContent(stages), needsAllLayers(stages), tt.changes, tt.needs)
			}
		})
	}
}

func TestSearchCommandArgs(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run([]string{"search", "quay://quay.io/org", "*.conf"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "search does not support quay://") {
		t.Errorf("quay: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"search", "--regex", "tar://x.tar", "("}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "invalid regular expression") {
		t.Errorf("bad regex: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"search", "tar://x.tar"}, &out, &errb); code != 2 {
		t.Errorf("missing pattern: exit %d, stderr %q", code, errb.String())
	}
}
