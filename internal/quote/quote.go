package quote

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name returns s with every control character, invalid byte and backslash
// escaped.
func Name(s string) string { return escape(s, true) }

// Text returns s with every control character (but tab) and invalid byte
// escaped.
func Text(s string) string { return escape(s, false) }

func needs(r rune, name bool) bool {
	switch {
	case r == '\\' || r == '\t':
		return name
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x80:
		return false
	}
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

func escape(s string, name bool) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if needs(r, name) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !needs(r, name):
			b.WriteString(s[i : i+n])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}
