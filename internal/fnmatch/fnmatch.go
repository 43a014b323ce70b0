package fnmatch

import (
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tokLit tokKind = iota
	tokAny
	tokStar
	tokSet
)

type token struct {
	kind   tokKind
	r      rune
	negate bool
	ranges [][2]rune
}

// Pattern is a compiled fnmatch pattern.
type Pattern struct {
	src  string
	toks []token
	// literal is set when the pattern has no special characters.
	literal bool
}

// Compile compiles pat. Every string is a valid pattern.
func Compile(pat string) *Pattern {
	p := &Pattern{src: pat}
	rs := []rune(pat)
	n := len(rs)
	for i := 0; i < n; {
		c := rs[i]
		i++
		switch c {
		case '*':
			if len(p.toks) == 0 || p.toks[len(p.toks)-1].kind != tokStar {
				p.toks = append(p.toks, token{kind: tokStar})
			}
		case '?':
			p.toks = append(p.toks, token{kind: tokAny})
		case '[':
			j := i
			if j < n && rs[j] == '!' {
				j++
			}
			if j < n && rs[j] == ']' {
				j++
			}
			for j < n && rs[j] != ']' {
				j++
			}
			if j >= n {
				p.toks = append(p.toks, token{kind: tokLit, r: '['})
				continue
			}
			body := rs[i:j]
			i = j + 1
			t := token{kind: tokSet}
			if len(body) > 0 && body[0] == '!' {
				t.negate = true
				body = body[1:]
			}
			for k := 0; k < len(body); k++ {
				lo := body[k]
				if k+2 < len(body) && body[k+1] == '-' {
					t.ranges = append(t.ranges, [2]rune{lo, body[k+2]})
					k += 2
					continue
				}
				t.ranges = append(t.ranges, [2]rune{lo, lo})
			}
			p.toks = append(p.toks, t)
		default:
			p.toks = append(p.toks, token{kind: tokLit, r: c})
		}
	}
	p.literal = !strings.ContainsAny(pat, "*?[")
	return p
}

// String returns the pattern as given.
func (p *Pattern) String() string { return p.src }

// Match reports whether name matches the whole pattern.
func (p *Pattern) Match(name string) bool {
	if p.literal {
		return name == p.src
	}
	// Iterative matching with backtracking to the last star.
	ti, ni := 0, 0
	starT, starN := -1, 0
	for {
		if ti < len(p.toks) && p.toks[ti].kind == tokStar {
			starT, starN = ti, ni
			ti++
			continue
		}
		if ni >= len(name) {
			return ti == len(p.toks)
		}
		r, size := utf8.DecodeRuneInString(name[ni:])
		if ti < len(p.toks) && p.toks[ti].matches(r) {
			ti++
			ni += size
			continue
		}
		if ti == len(p.toks) && starT >= 0 && starT == len(p.toks)-1 {
			return true // trailing star takes the rest
		}
		if starT < 0 {
			return false
		}
		_, s := utf8.DecodeRuneInString(name[starN:])
		starN += s
		ni = starN
		ti = starT + 1
	}
}

func (t *token) matches(r rune) bool {
	switch t.kind {
	case tokLit:
		return t.r == r
	case tokAny:
		return true
	case tokSet:
		in := false
		for _, rg := range t.ranges {
			if rg[0] <= r && r <= rg[1] {
				in = true
				break
			}
		}
		return in != t.negate
	}
	return false
}

// Match reports whether name matches pat (fnmatch.fnmatch(name, pat)).
func Match(name, pat string) bool { return Compile(pat).Match(name) }
