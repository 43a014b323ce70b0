package fnmatch

import "testing"

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pat string
		want      bool
	}{
		{"etc/passwd", "etc/passwd", true},
		{"etc/passwd", "etc/pass", false},
		{"usr/share/doc/a/README", "*README", true},
		{"usr/share/doc/a/README", "usr/*", true},         // * crosses /
		{"usr/share/doc/a/README", "usr/**/README", true}, // ** is just two stars
		{"usr/README", "usr/**/README", false},
		{"a.conf", "*.conf", true},
		{"opt/app/.wh.old.conf", "*.conf", true},
		{"a.confx", "*.conf", false},
		{"abc", "a?c", true},
		{"ac", "a?c", false},
		{"a/c", "a?c", true},
		{"b1", "[abc]1", true},
		{"d1", "[abc]1", false},
		{"d1", "[!abc]1", true},
		{"m", "[a-z]", true},
		{"M", "[a-z]", false},
		{"]", "[]]", true},
		{"a", "[!]]", true},
		{"]", "[!]]", false},
		{"-", "[a-]", true},
		{"[x", "[x", true}, // unclosed [ is literal
		{"x", "[x", false},
		{`a\b`, `a\b`, true},
		{`\`, `[\]`, true},
		{"", "*", true},
		{"", "", true},
		{"x", "", false},
		{"Etc", "etc", false},
		{"ümlaut.txt", "?mlaut.txt", true},
		{"aaa", "*a*a*a*", true},
		{"aa", "*a*a*a*", false},
		{"line\nbreak", "line*", true},
		{"abcabd", "*abd", true},
		{"x", "[!]", false}, // "[!]" is never closed: a literal
		{"[!]", "[!]", true},
	}
	for _, tt := range tests {
		if got := Match(tt.name, tt.pat); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.name, tt.pat, got, tt.want)
		}
	}
}
