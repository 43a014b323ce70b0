package pyjson

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIndent(t *testing.T) {
	t.Parallel()
	type entry struct {
		Config   string
		Layers   []string
		RepoTags []string
	}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{
			name: "manifest",
			v:    []entry{{Config: "c.json", Layers: []string{"a/layer.tar"}, RepoTags: []string{"app:v1"}}},
			want: "[\n    {\n        \"Config\": \"c.json\",\n        \"Layers\": [\n            \"a/layer.tar\"\n        ],\n        \"RepoTags\": [\n            \"app:v1\"\n        ]\n    }\n]",
		},
		{name: "empty list", v: []string{}, want: "[]"},
		{name: "html and unicode", v: map[string]string{"b": "<é>&😀", "a": "x"}, want: "{\n  \"a\": \"x\",\n  \"b\": \"<\\u00e9>&\\ud83d\\ude00\"\n}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			indent := "    "
			if tc.name == "html and unicode" {
				indent = "  "
			}
			got, err := Indent(tc.v, indent)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("Indent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"app:v1":        `"app:v1"`,
		"a\"b\\c\n":     `"a\"b\\c\n"`,
		"ü/<tag>":       `"\u00fc/<tag>"`,
		"tab\there\x01": `"tab\there\u0001"`,
	}
	for in, want := range tests {
		if got := string(String(in)); got != want {
			t.Errorf("String(%q) = %s, want %s", in, got, want)
		}
	}
}

// String, Indent and Marshal must escape strings the same way.
func TestEscapesAgree(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", "é😀\u2028", "<&>\x7f\x00\b\f", "bad \xff utf-8"} {
		m, err := Marshal(s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		in, err := Indent(s, "  ")
		if err != nil {
			t.Fatal(err)
		}
		if got := String(s); string(got) != string(m) || string(in) != string(m) {
			t.Errorf("%q: String %s, Indent %s, Marshal %s", s, got, in, m)
		}
	}
}
