package pyjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Object is a JSON object that keeps its keys in document order (as Python's
// dict does after json.loads).
type Object struct {
	Keys   []string
	Values map[string]any
}

// Get returns the value under key and whether it is present.
func (o *Object) Get(key string) (any, bool) {
	v, ok := o.Values[key]
	return v, ok
}

// Set sets key, appending it when it is new.
func (o *Object) Set(key string, v any) {
	if o.Values == nil {
		o.Values = map[string]any{}
	}
	if _, ok := o.Values[key]; !ok {
		o.Keys = append(o.Keys, key)
	}
	o.Values[key] = v
}

// Decode parses one JSON document. Objects become *Object, arrays []any,
// numbers json.Number, and the rest string, bool or nil. A key given twice
// keeps its first position and its last value, as in Python.
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("pyjson: extra data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("pyjson: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &Object{Values: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("pyjson: %w", err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("pyjson: object key %v is not a string", kt)
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("pyjson: %w", err)
			}
			return o, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("pyjson: %w", err)
			}
			return a, nil
		}
		return nil, fmt.Errorf("pyjson: unexpected %v", t)
	default:
		return tok, nil
	}
}

// Options change how Marshal writes.
type Options struct {
	// SortKeys writes object keys sorted (json.dumps(sort_keys=True)).
	SortKeys bool
}

// Marshal writes v as Python's json.dumps would. v may hold *Object,
// map[string]any, []any, []string, string, bool, nil, json.Number, int,
// int64 and float64.
func Marshal(v any, opts Options) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v, opts); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encode(b *bytes.Buffer, v any, opts Options) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		writeString(b, x)
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(FormatFloat(x))
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil && !isRangeErr(err) {
				return fmt.Errorf("pyjson: number %q: %w", s, err)
			}
			b.WriteString(FormatFloat(f))
		} else {
			// Python ints are exact whatever their size; "-0" is 0.
			if s == "-0" {
				s = "0"
			}
			b.WriteString(s)
		}
	case []any:
		return encodeArray(b, x, opts)
	case []string:
		return encodeArray(b, x, opts)
	case *Object:
		keys := x.Keys
		if opts.SortKeys {
			keys = slices.Clone(keys)
			sortPython(keys)
		}
		return encodeObject(b, keys, x.Values, opts)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// A Go map has no order of its own: always sorted.
		sortPython(keys)
		return encodeObject(b, keys, x, opts)
	default:
		return fmt.Errorf("pyjson: cannot encode %T", v)
	}
	return nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func encodeArray[T any](b *bytes.Buffer, xs []T, opts Options) error {
	b.WriteByte('[')
	for i, e := range xs {
		if i > 0 {
			b.WriteString(", ")
		}
		if err := encode(b, e, opts); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}

func encodeObject(b *bytes.Buffer, keys []string, vals map[string]any, opts Options) error {
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		writeString(b, k)
		b.WriteString(": ")
		if err := encode(b, vals[k], opts); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

// sortPython sorts as Python sorts str: by code point, which for valid UTF-8
// is the byte order.
func sortPython(keys []string) { slices.Sort(keys) }

const hexDigits = "0123456789abcdef"

// writeString writes s with ensure_ascii escaping.
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				if c < 0x20 {
					writeU(b, rune(c))
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		writeRune(b, r)
	}
	b.WriteByte('"')
}

// writeRune writes the escape of a non-ASCII rune: \uXXXX, or a surrogate
// pair above U+FFFF.
func writeRune(b *bytes.Buffer, r rune) {
	if r > 0xFFFF {
		r -= 0x10000
		writeU(b, 0xD800+(r>>10))
		writeU(b, 0xDC00+(r&0x3FF))
		return
	}
	writeU(b, r)
}

func writeU(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[(r>>12)&0xF])
	b.WriteByte(hexDigits[(r>>8)&0xF])
	b.WriteByte(hexDigits[(r>>4)&0xF])
	b.WriteByte(hexDigits[r&0xF])
}

// FormatFloat writes f as Python's repr(float) does: the shortest digits
// that read back to f, in fixed notation when the decimal exponent is in
// [-4, 16), else in exponent notation ("1e+16", "1e-05"); integral values
// get ".0". Infinities and NaN are written as json.dumps writes them.
func FormatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	// Shortest digits and exponent: d.ddddde±XX.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exps, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(exps)
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1 // position of the decimal point after the first digit
	var s string
	if decpt <= -4 || decpt > 16 {
		s = digits[:1]
		if len(digits) > 1 {
			s += "." + digits[1:]
		}
		sign := "+"
		x := decpt - 1
		if x < 0 {
			sign = "-"
			x = -x
		}
		s += "e" + sign + fmt.Sprintf("%02d", x)
	} else {
		switch {
		case decpt <= 0:
			s = "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			s = digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			s = digits[:decpt] + "." + digits[decpt:]
		}
	}
	if neg {
		s = "-" + s
	}
	return s
}
