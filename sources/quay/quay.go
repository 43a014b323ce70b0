package quay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/sourcegraph/conc/pool"

	"github.com/occystrap/occystrap/internal/fnmatch"
	"github.com/occystrap/occystrap/internal/quote"
	"github.com/occystrap/occystrap/stage/uri"
	"github.com/occystrap/occystrap/transport"
	"github.com/occystrap/occystrap/transport/reference"
)

// DefaultHost is the Quay host when neither ?host= nor OCCYSTRAP_QUAY_HOST
// says otherwise.
const DefaultHost = "quay.io"

// Spec is a parsed quay:// URI.
type Spec struct {
	// Host is the Quay host (API and registry).
	Host string
	// Namespace is the organization; Glob matches repository names in it.
	Namespace, Glob, Tag string
	// Since, when not zero, is midnight UTC of the since date.
	Since time.Time
	// Token is the API bearer token (?token=, else the caller's fallback).
	Token string
	// Insecure uses plain HTTP.
	Insecure bool
}

// String is the source as the user wrote it, without options.
func (s Spec) String() string { return "quay://" + s.Namespace + "/" + s.Glob + ":" + s.Tag }

// sinceError keeps the original's message and matches ErrSince.
type sinceError struct{ value string }

func (e *sinceError) Error() string {
	return fmt.Sprintf("Invalid since date '%s', expected YYYY-MM-DD format", e.value)
}

func (e *sinceError) Is(target error) bool { return target == ErrSince }

// ParseURI reads a quay:// URI. defaultHost is the host when the URI has no
// ?host= ("" means DefaultHost); token is the fallback token (--password);
// insecure the --insecure default.
func ParseURI(u uri.URI, defaultHost, token string, insecure bool) (Spec, error) {
	s := Spec{Host: defaultHost, Namespace: u.Host, Glob: "*", Tag: "latest", Token: token, Insecure: insecure}
	if s.Host == "" {
		s.Host = DefaultHost
	}
	if s.Namespace == "" {
		return s, ErrNoNamespace
	}
	if p := u.Path; p != "" {
		if i := strings.LastIndex(p, ":"); i >= 0 {
			s.Glob, s.Tag = p[:i], p[i+1:]
		} else {
			s.Glob = p
		}
		if s.Glob == "" {
			s.Glob = "*"
		}
		if s.Tag == "" {
			s.Tag = "latest"
		}
	}
	known := []string{"token", "since", "host", "insecure"}
	for k := range u.Options {
		if !slices.Contains(known, k) {
			return s, fmt.Errorf("unknown option %q for quay:// (known: %s)", k, strings.Join(known, ", "))
		}
	}
	if v, ok := u.String("token"); ok && v != "" {
		s.Token = v
	}
	if v, ok := u.String("host"); ok && v != "" {
		s.Host = v
	}
	var err error
	if s.Insecure, err = u.Bool("insecure", s.Insecure); err != nil {
		return s, err
	}
	if v, ok := u.String("since"); ok {
		d, err := time.Parse("2006-01-02", v)
		if err != nil || len(v) != len("2006-01-02") {
			return s, &sinceError{v}
		}
		s.Since = d.UTC()
	}
	return s, nil
}

// Ref is one resolved image.
type Ref struct {
	// Host is the registry host (the Quay host); Repo "NS/NAME".
	Host, Repo, Tag string
}

func (r Ref) String() string { return r.Host + "/" + r.Repo + ":" + r.Tag }

// Name is the repository name within the namespace.
func (r Ref) Name() string { return r.Repo[strings.LastIndex(r.Repo, "/")+1:] }

// Resolve lists the images spec names, sorted by repository. Workers tag
// checks run at once (at least 1).
func Resolve(ctx context.Context, q *transport.Quay, spec Spec, workers int) ([]Ref, error) {
	return ResolveFunc(ctx, q, spec, workers, nil)
}

// ResolveFunc is Resolve that also hands each image to found (when not nil)
// as soon as every page is listed and it and every image sorted before it
// are resolved: in the order of the result, one call at a time, before
// ResolveFunc returns. A page's tags are checked while the next page is
// fetched. A
// caller can start work on the first images (fetching ahead) while the
// later ones' tags are still being checked. found must not block for long.
// When ResolveFunc fails, the images already handed over are not a result.
func ResolveFunc(ctx context.Context, q *transport.Quay, spec Spec, workers int, found func(Ref)) ([]Ref, error) {
	log := zerolog.Ctx(ctx)
	since := !spec.Since.IsZero()
	sinceTS := spec.Since.Unix()
	pat := fnmatch.Compile(spec.Glob)

	// Each page's matching repositories are checked as the page comes,
	// while the next is fetched; the answers are handed over in sorted
	// order once every page is in. Each check sends its answer (an image,
	// nil, or an error) on its own channel.
	type answer struct {
		ref *Ref
		err error
	}
	var (
		names   []string
		answers = map[string]chan answer{}
	)
	skipped, invalid := 0, 0
	// Workers goroutines check the names in the order listed, taking them
	// from a queue the listing appends to, so that the listing never waits
	// for the checks and a listing of any length starts no more than
	// workers goroutines.
	var (
		qmu    sync.Mutex
		qcond  = sync.NewCond(&qmu)
		queue  []string
		next   int
		listed bool // no more names come
	)
	take := func() (string, bool) {
		qmu.Lock()
		defer qmu.Unlock()
		for next == len(queue) && !listed {
			qcond.Wait()
		}
		if next == len(queue) {
			return "", false
		}
		next++
		return queue[next-1], true
	}
	endQueue := func() {
		qmu.Lock()
		listed = true
		qmu.Unlock()
		qcond.Broadcast()
	}
	// A failed check cancels the listing and the other checks, its error
	// the cause; every name still gets its answer (the context's error),
	// so that the handover below never waits.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p := pool.New()
	check := func(ctx context.Context, name string) answer {
		t, err := q.Tag(ctx, spec.Namespace, name, spec.Tag)
		switch {
		case errors.Is(err, transport.ErrNotFound):
			log.Debug().Str("repository", spec.Namespace+"/"+name).Msg("Repository not found, skipped")
			return answer{}
		case err != nil:
			return answer{err: err}
		case t == nil:
			log.Debug().Str("repository", spec.Namespace+"/"+name).Str("tag", spec.Tag).Msg("Tag does not exist")
			return answer{}
		case since && t.StartTS < sinceTS:
			log.Debug().Str("repository", spec.Namespace+"/"+name).Str("tag", spec.Tag).
				Time("pushed", time.Unix(t.StartTS, 0).UTC()).Msg("Tag older than since, skipped")
			return answer{}
		}
		return answer{ref: &Ref{Host: spec.Host, Repo: spec.Namespace + "/" + name, Tag: spec.Tag}}
	}
	for range max(workers, 1) {
		p.Go(func() {
			for {
				name, ok := take()
				if !ok {
					return
				}
				a := answer{err: ctx.Err()} // after a failed check, the rest answer at once
				if a.err == nil {
					a = check(ctx, name)
				}
				if a.err != nil {
					cancel(a.err) // the first is the cause
				}
				qmu.Lock()
				c := answers[name]
				qmu.Unlock()
				c <- a
			}
		})
	}
	repos, err := q.Repositories(ctx, spec.Namespace, since, func(n int, page []transport.QuayRepository, total int) {
		log.Debug().Str("namespace", spec.Namespace).Int("page", n).Int("repositories", total).Msg("Listed repositories")
		for _, r := range page {
			if !reference.ValidNameComponent(r.Name) {
				// A name no registry can hold: a hostile or broken listing.
				invalid++
				log.Warn().Str("namespace", spec.Namespace).Str("repository", quote.Name(r.Name)).
					Msg("Repository with an invalid name skipped")
				continue
			}
			if since {
				var ts int64
				if r.LastModified != nil {
					ts = *r.LastModified
				}
				if ts < sinceTS {
					skipped++
					continue
				}
			}
			if !pat.Match(r.Name) || answers[r.Name] != nil {
				continue // a name listed twice is checked once
			}
			names = append(names, r.Name)
			qmu.Lock()
			answers[r.Name] = make(chan answer, 1)
			queue = append(queue, r.Name)
			qmu.Unlock()
			qcond.Signal()
		}
	})
	endQueue()
	if err != nil {
		if ctx.Err() == nil {
			cancel(err)
		}
		p.Wait()
		return nil, context.Cause(ctx) // a check's error, if one failed first
	}
	log.Info().Str("namespace", spec.Namespace).Int("repositories", len(repos)).Int("older_than_since", skipped).Int("invalid_names", invalid).
		Str("glob", spec.Glob).Int("matched", len(names)).Msg("Listed repositories")

	slices.Sort(names)
	var out []Ref
	for _, name := range names {
		a := <-answers[name] // every check answers, cancelled or not
		if a.err != nil {
			break // the first error is the context's cause
		}
		if a.ref != nil {
			out = append(out, *a.ref)
			if found != nil {
				found(*a.ref)
			}
		}
	}
	p.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Ref) int { return strings.Compare(a.Repo, b.Repo) })
	log.Info().Int("images", len(out)).Str("source", spec.String()).Msg("Resolved images")
	return out, nil
}
