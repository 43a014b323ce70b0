package pyjson

import (
	"bytes"
	"encoding/json"
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
	var b bytes.Buffer
	writeString(&b, s)
	return b.Bytes()
}

// ASCII replaces every non-ASCII character of JSON text with its \uXXXX
// escape. Outside strings JSON text is ASCII, so this only touches strings.
func ASCII(text []byte) []byte {
	i := 0
	for i < len(text) && text[i] < utf8.RuneSelf {
		i++
	}
	if i == len(text) {
		return text
	}
	var b bytes.Buffer
	b.Grow(len(text) + 16)
	b.Write(text[:i])
	for i < len(text) {
		c := text[i]
		if c < utf8.RuneSelf {
			b.WriteByte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		i += size
		writeRune(&b, r)
	}
	return b.Bytes()
}
