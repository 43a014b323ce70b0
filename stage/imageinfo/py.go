package imageinfo

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/occystrap/occystrap/internal/pyjson"
)

// Values here are what pyjson.Decode gives (*pyjson.Object, []any,
// json.Number, string, bool, nil) plus the int64 and []any built by Info.
// The helpers below give them Python's meaning.

// truthy is Python's bool(v).
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case int64:
		return x != 0
	case int:
		return x != 0
	case []any:
		return len(x) > 0
	case *pyjson.Object:
		return x != nil && len(x.Keys) > 0
	}
	return true
}

// obj returns v as an object, or nil when it is none.
func obj(v any) *pyjson.Object {
	o, _ := v.(*pyjson.Object)
	return o
}

// get is o.get(key): nil when o is nil or key is absent.
func get(o *pyjson.Object, key string) any {
	if o == nil {
		return nil
	}
	v, _ := o.Get(key)
	return v
}

// getOr is o.get(key, def).
func getOr(o *pyjson.Object, key string, def any) any {
	if o == nil {
		return def
	}
	v, ok := o.Get(key)
	if !ok {
		return def
	}
	return v
}

// has reports whether key is in o.
func has(o *pyjson.Object, key string) bool {
	if o == nil {
		return false
	}
	_, ok := o.Get(key)
	return ok
}

// list is v as a list (a non-list is empty).
func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// number returns v as an int64 and whether it is a whole number.
func number(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		if f, err := x.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			return int64(f), true
		}
	case int64:
		return x, true
	case int:
		return int64(x), true
	}
	return 0, false
}

// pyStr is Python's str(v) ('%s').
func pyStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil, bool, json.Number, int64, int, []any, *pyjson.Object:
		return pyRepr(x)
	}
	return fmt.Sprint(v)
}

// pyRepr is Python's repr(v) ('%r', and str of a list or dict).
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return reprString(x)
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			if f, err := x.Float64(); err == nil {
				return pyjson.FormatFloat(f)
			}
		}
		return s
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case []int:
		parts := make([]string, len(x))
		for i, n := range x {
			parts[i] = strconv.Itoa(n)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *pyjson.Object:
		if x == nil {
			return "{}"
		}
		parts := make([]string, len(x.Keys))
		for i, k := range x.Keys {
			parts[i] = reprString(k) + ": " + pyRepr(x.Values[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// reprString is Python's repr of a str: single quotes unless the text holds
// a single quote and no double quote.
func reprString(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8Error:
			b.WriteString(`\ufffd`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

const utf8Error = unicode.ReplacementChar

// FormatSize is the original's format_size: "N B" below 1 KiB, else KB, MB
// or GB (base 1024) with one decimal; "N/A" for no size (nil).
func FormatSize(v any) string {
	if v == nil {
		return "N/A"
	}
	n, ok := number(v)
	if !ok {
		if x, isNum := v.(json.Number); isNum {
			if f, err := x.Float64(); err == nil {
				return formatFloatSize(f)
			}
		}
		return "N/A"
	}
	return formatFloatSize(float64(n))
}

func formatFloatSize(f float64) string {
	switch {
	case f < 1024:
		return fmt.Sprintf("%d B", int64(f))
	case f < 1024*1024:
		return fmt.Sprintf("%.1f KB", f/1024)
	case f < 1024*1024*1024:
		return fmt.Sprintf("%.1f MB", f/(1024*1024))
	}
	return fmt.Sprintf("%.1f GB", f/(1024*1024*1024))
}

// cut shortens a digest for display: 25 characters and "...".
func cut(s string) string {
	if len([]rune(s)) > 25 {
		return string([]rune(s)[:25]) + "..."
	}
	return s
}
