package imageinfo

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// table is the subset of PrettyTable the original's info uses: default
// style, every column left-aligned (headers included), one space of padding,
// a maximum width on some columns (longer lines wrapped as textwrap.fill
// wraps them), cells aligned to the top.
type table struct {
	fields   []string
	maxWidth map[int]int // column -> maximum width
	rows     [][]string
}

func (t table) String() string {
	widths := make([]int, len(t.fields))
	for i, f := range t.fields {
		widths[i] = blockWidth(f)
	}
	for _, r := range t.rows {
		for i, v := range r {
			w := blockWidth(v)
			if mw, ok := t.maxWidth[i]; ok {
				w = min(w, mw)
			}
			widths[i] = max(widths[i], w)
		}
	}
	var b strings.Builder
	rule := func() {
		b.WriteByte('+')
		for _, w := range widths {
			b.WriteString(strings.Repeat("-", w+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	writeRow := func(cells []string) {
		lines := make([][]string, len(cells))
		height := 1
		for i, c := range cells {
			var out []string
			for _, l := range strings.Split(c, "\n") {
				if blockWidth(l) > widths[i] {
					out = append(out, strings.Split(fill(l, widths[i]), "\n")...)
				} else {
					out = append(out, l)
				}
			}
			lines[i] = out
			height = max(height, len(out))
		}
		for h := range height {
			b.WriteByte('|')
			for i := range cells {
				l := ""
				if h < len(lines[i]) {
					l = lines[i][h]
				}
				b.WriteByte(' ')
				b.WriteString(l)
				b.WriteString(strings.Repeat(" ", widths[i]-textWidth(l)))
				b.WriteString(" |")
			}
			b.WriteByte('\n')
		}
	}
	rule()
	writeRow(t.fields)
	rule()
	for _, r := range t.rows {
		writeRow(r)
	}
	b.WriteByte('+')
	for i, w := range widths {
		b.WriteString(strings.Repeat("-", w+2))
		if i < len(widths)-1 {
			b.WriteByte('+')
		}
	}
	b.WriteByte('+')
	return b.String()
}

// blockWidth is the width of the widest line of s.
func blockWidth(s string) int {
	w := 0
	for _, l := range strings.Split(s, "\n") {
		w = max(w, textWidth(l))
	}
	return w
}

// textWidth is PrettyTable's _str_block_width of one line: East Asian wide
// and full-width characters count 2, combining and control characters 0.
func textWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || unicode.IsControl(r):
		case isWide(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

// isWide reports East Asian wide and full-width characters (the main
// ranges wcwidth gives 2).
func isWide(r rune) bool {
	for _, rg := range wideRanges {
		if r >= rg[0] && r <= rg[1] {
			return true
		}
	}
	return false
}

var wideRanges = [][2]rune{
	{0x1100, 0x115F}, {0x2E80, 0x303E}, {0x3041, 0x33FF}, {0x3400, 0x4DBF}, {0x4E00, 0x9FFF},
	{0xA000, 0xA4CF}, {0xAC00, 0xD7A3}, {0xF900, 0xFAFF}, {0xFE30, 0xFE4F}, {0xFF00, 0xFF60},
	{0xFFE0, 0xFFE6}, {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x20000, 0x3FFFD},
}

// fill is Python's textwrap.fill(text, w) with its defaults: whitespace
// becomes spaces, lines break between words (and after a hyphen inside a
// word), words longer than a line are split, spaces at a break are dropped.
func fill(text string, w int) string {
	text = strings.ReplaceAll(text, "\t", "        ")
	text = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\v' || r == '\f' || r == '\r' {
			return ' '
		}
		return r
	}, text)
	chunks := splitChunks(text)
	var lines []string
	for len(chunks) > 0 {
		var cur []string
		curLen := 0
		// Drop leading whitespace of a line after the first.
		if len(lines) > 0 && strings.TrimSpace(chunks[0]) == "" {
			chunks = chunks[1:]
		}
		for len(chunks) > 0 {
			l := utf8.RuneCountInString(chunks[0])
			if curLen+l <= w {
				cur = append(cur, chunks[0])
				curLen += l
				chunks = chunks[1:]
			} else {
				break
			}
		}
		if len(chunks) > 0 && utf8.RuneCountInString(chunks[0]) > w {
			// A long word: break it to fill the line.
			if space := w - curLen; space > 0 {
				r := []rune(chunks[0])
				cur = append(cur, string(r[:space]))
				chunks[0] = string(r[space:])
				curLen += space
			}
		}
		// Drop trailing whitespace.
		if len(cur) > 0 && strings.TrimSpace(cur[len(cur)-1]) == "" {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			lines = append(lines, strings.Join(cur, ""))
		}
	}
	return strings.Join(lines, "\n")
}

// splitChunks splits text into words, runs of spaces, and word pieces
// ending in a hyphen between letters (textwrap's break_on_hyphens).
func splitChunks(text string) []string {
	var out []string
	r := []rune(text)
	start := 0
	isLetter := func(c rune) bool { return unicode.IsLetter(c) }
	for i := 0; i < len(r); i++ {
		if r[i] == ' ' {
			if i > start {
				out = append(out, string(r[start:i]))
			}
			j := i
			for j < len(r) && r[j] == ' ' {
				j++
			}
			out = append(out, string(r[i:j]))
			start, i = j, j-1
			continue
		}
		if r[i] == '-' && i >= 2 && i+1 < len(r) && isLetter(r[i-1]) && isLetter(r[i-2]) && isLetter(r[i+1]) {
			out = append(out, string(r[start:i+1]))
			start = i + 1
		}
	}
	if start < len(r) {
		out = append(out, string(r[start:]))
	}
	return out
}
