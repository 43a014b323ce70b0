package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Challenge is one authentication challenge of a WWW-Authenticate header.
type Challenge struct {
	Scheme string            // lowercased: "bearer", "basic"
	Params map[string]string // keys lowercased
}

// ParseChallenges parses a WWW-Authenticate header value: one or more
// challenges, parameters in any order, values quoted or not.
func ParseChallenges(h string) []Challenge {
	var out []Challenge
	p := &challengeParser{s: h}
	for {
		p.skip(", \t")
		if p.done() {
			return out
		}
		tok := p.token()
		if tok == "" {
			// Not a token: skip a character so we always progress.
			p.i++
			continue
		}
		p.skip(" \t")
		if p.peek() == '=' && len(out) > 0 {
			// A parameter of the current challenge.
			p.i++
			p.skip(" \t")
			out[len(out)-1].Params[strings.ToLower(tok)] = p.value()
			continue
		}
		out = append(out, Challenge{Scheme: strings.ToLower(tok), Params: map[string]string{}})
	}
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }

func (p *challengeParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *challengeParser) skip(set string) {
	for !p.done() && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *challengeParser) token() string {
	start := p.i
	for !p.done() && !strings.ContainsRune(" \t,=\"", rune(p.s[p.i])) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) value() string {
	if p.peek() != '"' {
		return p.token()
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if !p.done() {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// MergeScopes merges token scopes ("type:name:action,action"): the actions
// of scopes naming the same resource are united. Order is stable.
func MergeScopes(scopes ...string) []string {
	type res struct {
		key     string
		actions []string
	}
	var list []*res
	for _, s := range scopes {
		for _, one := range strings.Fields(s) {
			i := strings.LastIndex(one, ":")
			if i < 0 {
				continue
			}
			key, acts := one[:i], strings.Split(one[i+1:], ",")
			var r *res
			for _, x := range list {
				if x.key == key {
					r = x
				}
			}
			if r == nil {
				r = &res{key: key}
				list = append(list, r)
			}
			for _, a := range acts {
				if a != "" && !slices.Contains(r.actions, a) {
					r.actions = append(r.actions, a)
				}
			}
		}
	}
	out := make([]string, 0, len(list))
	for _, r := range list {
		slices.Sort(r.actions)
		out = append(out, r.key+":"+strings.Join(r.actions, ","))
	}
	return out
}

// hostAuth is what one registry host wants, learned from its challenges, and
// its cached tokens. Shared by every goroutine and every image.
type hostAuth struct {
	mu      sync.Mutex
	scheme  string // "", "bearer" or "basic"
	realm   string
	service string
	tokens  map[string]*tokenEntry // by merged scope
}

type tokenEntry struct {
	mu      sync.Mutex // held while fetching, so one goroutine fetches
	token   string
	expires time.Time
}

func (t *Transport) hostAuth(host string) *hostAuth {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.registries[host]
	if !ok {
		h = &hostAuth{tokens: map[string]*tokenEntry{}}
		t.registries[host] = h
	}
	return h
}

func (h *hostAuth) learn(c Challenge) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scheme = c.Scheme
	h.realm = c.Params["realm"]
	h.service = c.Params["service"]
}

func (h *hostAuth) state() (scheme, realm, service string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.scheme, h.realm, h.service
}

func (h *hostAuth) entry(scope string) *tokenEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.tokens[scope]
	if !ok {
		e = &tokenEntry{}
		h.tokens[scope] = e
	}
	return e
}

// token returns a valid token for scope, fetching one when none is cached.
// stale, when not empty, is a token the registry just refused: it is
// dropped (once, by whichever goroutine gets here first) and refreshed.
func (r *Registry) token(ctx context.Context, h *hostAuth, scope, stale string) (string, error) {
	_, realm, service := h.state()
	e := h.entry(scope)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != "" && e.token == stale {
		e.token = ""
	}
	if e.token != "" && time.Now().Before(e.expires) {
		return e.token, nil
	}
	tok, ttl, err := r.fetchToken(ctx, realm, service, scope)
	if err != nil {
		return "", err
	}
	r.t.secret(tok)
	e.token = tok
	e.expires = time.Now().Add(ttl - ttl/10)
	return tok, nil
}

func (r *Registry) fetchToken(ctx context.Context, realm, service, scope string) (string, time.Duration, error) {
	if realm == "" {
		return "", 0, fmt.Errorf("token for %s: the bearer challenge has no realm: %w", r.host, ErrUnauthorized)
	}
	u, err := url.Parse(realm)
	if err != nil {
		return "", 0, fmt.Errorf("token for %s: realm %q: %w", r.host, realm, err)
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range strings.Fields(scope) {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", 0, err
	}
	if user, pass, ok := r.credentials(ctx); ok {
		req.SetBasicAuth(user, pass)
	}
	r.t.c.tokenFetches.Add(1)
	resp, err := r.t.do(req, nil)
	if err != nil {
		return "", 0, fmt.Errorf("fetch token for %s from %s: %w", r.host, u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		err := ErrStatus
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			err = ErrUnauthorized
		}
		return "", 0, fmt.Errorf("fetch token for %s from %s: %s: %w", r.host, u.Host, resp.Status, err)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	raw, err := ReadLimited(resp.Body, maxToken)
	if err != nil {
		return "", 0, fmt.Errorf("read token from %s: %w", u.Host, err)
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return "", 0, fmt.Errorf("decode token from %s: %w", u.Host, err)
	}
	tok := body.Token
	if tok == "" {
		tok = body.AccessToken
	}
	if tok == "" {
		return "", 0, fmt.Errorf("token from %s is empty: %w", u.Host, ErrUnauthorized)
	}
	ttl := time.Duration(body.ExpiresIn) * time.Second
	if ttl < time.Minute {
		ttl = time.Minute
	}
	return tok, ttl, nil
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}
