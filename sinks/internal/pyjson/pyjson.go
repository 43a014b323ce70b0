package pyjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Indent is json.dumps(v, indent=indent, sort_keys=True) for values whose
// keys Go already writes in sorted order (maps, or structs whose fields are
// declared in sorted order). With an indent, Python's item separator is ","
// and its key separator ": ", as Go's.
func Indent(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return ASCII(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// String is json.dumps(s).
func String(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return ASCII(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// ASCII replaces every non-ASCII character of JSON text with its \uXXXX
// escape. Outside strings JSON text is ASCII, so this only touches strings.
func ASCII(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}
