package quote

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, name, text string }{
		{"etc/app.conf", "etc/app.conf", "etc/app.conf"},
		{"日本語/ファイル", "日本語/ファイル", "日本語/ファイル"},
		{"a\nb", `a\nb`, `a\nb`},
		{"\x1b[2J\x1b[31mred", `\x1b[2J\x1b[31mred`, `\x1b[2J\x1b[31mred`},
		{"tab\there", `tab\there`, "tab\there"},
		{`back\slash`, `back\\slash`, `back\slash`},
		{"bell\a", `bell\x07`, `bell\x07`},
		{"del\x7f", `del\x7f`, `del\x7f`},
		{"c1\u009b31m", `c1\u009b31m`, `c1\u009b31m`},
		{"raw\x9b31m", `raw\x9b31m`, `raw\x9b31m`},
		{"rlo\u202egnp.exe", `rlo\u202egnp.exe`, `rlo\u202egnp.exe`},
		{"cr\rforged", `cr\rforged`, `cr\rforged`},
	}
	for _, tt := range tests {
		if got := Name(tt.in); got != tt.name {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.name)
		}
		if got := Text(tt.in); got != tt.text {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.text)
		}
	}
}

func FuzzName(f *testing.F) {
	for _, s := range []string{"a", "a\nb", "\x1b[0m", `\`, "\xff", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, q := range []string{Name(s), Text(s)} {
			if !utf8.ValidString(q) {
				t.Fatalf("%q quoted to invalid UTF-8 %q", s, q)
			}
			for _, r := range q {
				if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
					t.Fatalf("%q quoted to %q, which holds %U", s, q, r)
				}
			}
		}
		if strings.ContainsAny(Name(s), "\t") {
			t.Fatalf("Name(%q) holds a tab", s)
		}
	})
}
