package redact

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Mask replaces every secret.
const Mask = "REDACTED"

// secretKeys are the (lowercased) URI option and form keys whose values are
// secrets. A key ending in one of secretSuffixes is a secret too.
var secretKeys = []string{
	"password", "passwd", "pass", "pwd", "token", "secret", "auth",
	"authorization", "apikey", "api_key", "credential", "credentials",
}

var secretSuffixes = []string{"_password", "_token", "_secret", "-password", "-token", "-secret"}

// IsSecretKey reports whether a URI option or form field of this name holds
// a secret.
func IsSecretKey(k string) bool {
	k = strings.ToLower(k)
	if slices.Contains(secretKeys, k) {
		return true
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// secretHeaders are the canonical names of headers whose values are
// secrets.
var secretHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
	"X-Registry-Auth", "X-Registry-Config",
}

var (
	// key=value, for a secret key; the value runs to a separator.
	kvRe = regexp.MustCompile(`(?i)\b([a-z0-9_-]*(?:password|passwd|pass|pwd|token|secret|auth|authorization|apikey|api_key|credentials?))=([^&\s"'<>,;)\]\\]+)`)
	// scheme://user:password@ (the password part), but not an image
	// reference's name:tag@sha256:... digest.
	userinfoRe = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://[^/\s:@"'?#]*):([^@/\s"'?#]+)@(sha256:|sha512:)?`)
	// Bearer xxx / Basic xxx.
	authRe = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)([a-z0-9._~+/=-]+)`)
	// "password":"..." in JSON text.
	jsonRe = regexp.MustCompile(`(?i)("(?:[a-z0-9_-]*(?:password|passwd|token|secret|auth|authorization|api_key|apikey|credentials?))"\s*:\s*)"(?:[^"\\]|\\.)*"`)
)

// URI returns s, a URI as given on a command line, with the password of any
// user:pass@ userinfo and the value of every secret query option replaced by
// Mask. Anything it does not recognise is left as it is.
func URI(s string) string {
	base, query, hasQuery := strings.Cut(s, "?")
	base = userinfo(base)
	if !hasQuery {
		return base
	}
	frag := ""
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query, frag = query[:i], query[i:]
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if ok && IsSecretKey(k) {
			parts[i] = k + "=" + Mask
		}
	}
	return base + "?" + strings.Join(parts, "&") + frag
}

// Text returns s, free text such as an error message or a log line, with
// everything that looks like a secret replaced by Mask: secret key=value
// pairs, URI userinfo passwords, Bearer/Basic credentials and JSON fields
// named like secrets.
func Text(s string) string {
	if !maybeSecret(s) {
		return s
	}
	s = userinfo(s)
	s = kvRe.ReplaceAllString(s, "$1="+Mask)
	s = authRe.ReplaceAllStringFunc(s, func(m string) string {
		g := authRe.FindStringSubmatch(m)
		if !credentialLike(g[3]) {
			return m
		}
		return g[1] + g[2] + Mask
	})
	s = jsonRe.ReplaceAllString(s, `$1"`+Mask+`"`)
	return s
}

// userinfo masks the password of scheme://user:password@host.
func userinfo(s string) string {
	return userinfoRe.ReplaceAllStringFunc(s, func(m string) string {
		g := userinfoRe.FindStringSubmatch(m)
		if g[3] != "" {
			return m // name:tag@sha256:...
		}
		return g[1] + ":" + Mask + "@"
	})
}

// credentialLike tells a token or base64 credential after "Bearer" or
// "Basic" from an ordinary word ("bearer challenge"): long, or holding a
// digit or a symbol words do not have.
func credentialLike(s string) bool {
	if len(s) >= 20 {
		return true
	}
	return len(s) >= 6 && strings.ContainsAny(s, "0123456789._~+/=")
}

// maybeSecret is a cheap test that lets most text skip the expressions.
func maybeSecret(s string) bool {
	return strings.Contains(s, "=") || strings.Contains(s, "@") || strings.Contains(s, ":") ||
		strings.Contains(s, "earer") || strings.Contains(s, "asic")
}

// Header returns a copy of h with the values of Authorization-like headers
// replaced by Mask (the scheme word, such as "Bearer", is kept).
func Header(h http.Header) http.Header {
	out := h.Clone()
	for _, k := range secretHeaders {
		vs, ok := out[k]
		if !ok {
			continue
		}
		masked := make([]string, len(vs))
		for i, v := range vs {
			if scheme, _, ok := strings.Cut(v, " "); ok && (k == "Authorization" || k == "Proxy-Authorization") {
				masked[i] = scheme + " " + Mask
			} else {
				masked[i] = Mask
			}
		}
		out[k] = masked
	}
	return out
}

// Error wraps err so that its message is redacted by Text; errors.Is and
// errors.As still see err. A nil err gives nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*redacted); ok {
		return err
	}
	return &redacted{err: err}
}

type redacted struct{ err error }

func (r *redacted) Error() string { return Text(r.err.Error()) }
func (r *redacted) Unwrap() error { return r.err }

// Secrets replaces every occurrence in s of any of the literal secrets (and
// of their JSON-escaped and Go-quoted forms) by Mask. Secrets shorter than
// 3 bytes are ignored: masking them would garble ordinary text.
func Secrets(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) < 3 {
			continue
		}
		for _, form := range forms(sec) {
			if strings.Contains(s, form) {
				s = strings.ReplaceAll(s, form, Mask)
			}
		}
	}
	return s
}

// forms are the spellings of a secret that can reach a log line: as is,
// quoted by %q, and percent-encoded as in a URI.
func forms(sec string) []string {
	out := []string{sec}
	q := strconv.Quote(sec)
	if q = q[1 : len(q)-1]; q != sec {
		out = append(out, q)
	}
	if e := pathEscape(sec); e != sec {
		out = append(out, e)
	}
	return out
}

func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
	}
	return b.String()
}

// Writer redacts what is written through it before passing it on: Text
// patterns (unless made with Literal) and the known secrets. Each Write is
// redacted on its own; a secret split across two writes is not found, so
// write whole lines (zerolog does).
type Writer struct {
	w        io.Writer
	patterns bool

	mu      sync.Mutex
	secrets []string
}

// NewWriter redacts both patterns and the given secrets.
func NewWriter(w io.Writer, secrets ...string) *Writer {
	rw := &Writer{w: w, patterns: true}
	rw.Add(secrets...)
	return rw
}

// NewLiteralWriter redacts only the known secrets: for output whose text
// is data (file names printed by search), where patterns could alter it.
func NewLiteralWriter(w io.Writer, secrets ...string) *Writer {
	rw := &Writer{w: w}
	rw.Add(secrets...)
	return rw
}

// Add makes secrets known to w.
func (w *Writer) Add(secrets ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range secrets {
		if s != "" && !slices.Contains(w.secrets, s) {
			w.secrets = append(w.secrets, s)
		}
	}
}

// Write redacts p and writes it whole; it reports len(p) on success so
// callers that check the count are not confused by the shorter text.
// Writes are serialized: loggers write from many goroutines, and the
// underlying writer need not be safe for concurrent use (a test's buffer).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	secrets := w.secrets
	s := string(p)
	if w.patterns {
		s = Text(s)
	}
	s = Secrets(s, secrets)
	if _, err := io.WriteString(w.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap gives the writer w writes to (to find out whether it is a
// terminal).
func (w *Writer) Unwrap() io.Writer { return w.w }

// URISecrets returns the secret values s carries: the password of a
// user:pass@ userinfo and the values of secret query options, both as
// written and percent-decoded. A Writer given them masks them wherever they
// appear, however they were quoted.
func URISecrets(s string) []string {
	var out []string
	add := func(v string) {
		if v == "" {
			return
		}
		out = append(out, v)
		if d, err := url.QueryUnescape(v); err == nil && d != v {
			out = append(out, d)
		}
	}
	base, query, _ := strings.Cut(s, "?")
	for _, g := range userinfoRe.FindAllStringSubmatch(base, -1) {
		if g[3] == "" {
			add(g[2])
		}
	}
	query, _, _ = strings.Cut(query, "#")
	for _, p := range strings.Split(query, "&") {
		if k, v, ok := strings.Cut(p, "="); ok && IsSecretKey(k) {
			add(v)
		}
	}
	return out
}
