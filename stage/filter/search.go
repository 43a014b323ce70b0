package filter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"sync"

	"github.com/occystrap/occystrap/internal/fnmatch"
	"github.com/occystrap/occystrap/internal/quote"
	"github.com/occystrap/occystrap/internal/tarfmt"
	"github.com/occystrap/occystrap/stage"
)

// SearchOptions configure the search filter.
type SearchOptions struct {
	// Pattern is a glob matched against a member's full path or its base
	// name, or with Regex a regular expression searched for in the path.
	Pattern string
	Regex   bool
	// ScriptFriendly prints `image:tag:layer:path` lines.
	ScriptFriendly bool
	// Separator, when not empty, replaces ':' between the fields of the
	// script-friendly form, and Terminator (default "\n") ends each record:
	// "\x00" for both gives a form no path can break.
	Separator  string
	Terminator string
	// JSON prints one JSON object per match, a line each.
	JSON bool
	// Parallel is the most layers read at once (default 1).
	Parallel int
}

// Search lists the members of every layer that match a pattern, forwards
// the items unchanged and, when its input closes, prints the matches in
// layer order. Only names and sizes are kept, never content.
type Search struct {
	img   stage.Image
	w     io.Writer
	opts  SearchOptions
	match func(name string) bool

	mu      sync.Mutex
	results map[int]layerMatches
}

type layerMatches struct {
	name    string
	matches []searchMatch
	err     error // the layer could not be read to its end
}

type searchMatch struct {
	path     string
	typ      string
	size     int64
	linkname string
}

// NewSearch returns a search filter for the image img that prints to w.
func NewSearch(img stage.Image, w io.Writer, opts SearchOptions) (*Search, error) {
	s := &Search{img: img, w: w, opts: opts, results: map[int]layerMatches{}}
	if opts.Regex {
		re, err := regexp.Compile(opts.Pattern)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression %q: %w", opts.Pattern, err)
		}
		s.match = re.MatchString
	} else {
		p := fnmatch.Compile(opts.Pattern)
		s.match = func(name string) bool { return p.Match(name) || p.Match(path.Base(name)) }
	}
	return s, nil
}

// Properties: layers pass unchanged, and every layer must be read, even
// one the destination already has (NeedsAllLayers).
func (s *Search) Properties() stage.StageProperties {
	return stage.StageProperties{Name: "search", NeedsAllLayers: true}
}

// Run searches and forwards every item, then prints the results. A layer
// that cannot be read to its end (a corrupt tar) does not stop the others:
// what was found in every layer is printed, and then Run fails with
// ErrCorruptLayer naming each broken layer.
func (s *Search) Run(ctx context.Context, in <-chan stage.Item, out chan<- stage.Item) error {
	err := passThrough(ctx, in, out, s.opts.Parallel,
		func(stage.Item) error { return nil },
		s.searchLayer)
	if err != nil {
		return err
	}
	if err := s.print(); err != nil {
		return err
	}
	return s.broken()
}

// broken joins the errors of the layers that could not be read.
func (s *Search) broken() error {
	seqs := make([]int, 0, len(s.results))
	for seq, r := range s.results {
		if r.err != nil {
			seqs = append(seqs, seq)
		}
	}
	sort.Ints(seqs)
	var errs []error
	for _, seq := range seqs {
		r := s.results[seq]
		errs = append(errs, fmt.Errorf("search: layer %d (%s): %w: %w", seq, quote.Name(r.name), ErrCorruptLayer, r.err))
	}
	return errors.Join(errs...)
}

func (s *Search) searchLayer(ctx context.Context, it stage.Item) error {
	rc, err := it.Body.Open()
	if err != nil {
		return fmt.Errorf("search: open layer %d (%s): %w", it.Seq, it.Name, err)
	}
	defer rc.Close()
	var found []searchMatch
	err = tarfmt.Walk(readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return rc.Read(p)
	}), func(m *tarfmt.Member) error {
		// Python's tarfile gives a directory's name without its slash;
		// base name of "a/b" is "b".
		name := m.Name
		if !s.match(name) {
			return nil
		}
		sm := searchMatch{path: name, typ: tarfmt.TypeName(m.Header), size: m.Header.Size}
		if sm.typ == "symlink" || sm.typ == "hardlink" {
			sm.linkname = m.Header.Linkname
		}
		found = append(found, sm)
		return nil
	})
	if err != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	// Keep what was found in a broken layer; Run reports it after printing.
	s.mu.Lock()
	s.results[it.Seq] = layerMatches{name: it.Name, matches: found, err: err}
	s.mu.Unlock()
	return nil
}

// jsonMatch is one match in the JSON form.
type jsonMatch struct {
	Image    string `json:"image"`
	Tag      string `json:"tag"`
	Layer    string `json:"layer"`
	Path     string `json:"path"`
	Type     string `json:"type"`
	Size     *int64 `json:"size,omitempty"`
	LinkName string `json:"linkname,omitempty"`
}

// print writes the results as the original does, or in the JSON form.
func (s *Search) print() error {
	seqs := make([]int, 0, len(s.results))
	for seq := range s.results {
		seqs = append(seqs, seq)
	}
	sort.Ints(seqs)
	bw := bufio.NewWriter(s.w)
	total := 0
	if s.opts.JSON {
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for _, seq := range seqs {
			r := s.results[seq]
			for _, m := range r.matches {
				j := jsonMatch{Image: s.img.Name, Tag: s.img.Tag, Layer: r.name, Path: m.path, Type: m.typ, LinkName: m.linkname}
				if m.typ == "file" {
					j.Size = &m.size
				}
				if err := enc.Encode(j); err != nil {
					return fmt.Errorf("search: print results: %w", err)
				}
			}
		}
		return flush(bw)
	}
	if s.opts.ScriptFriendly {
		sep, end := s.opts.Separator, s.opts.Terminator
		if sep == "" {
			sep = ":"
		}
		if end == "" {
			end = "\n"
		}
		// NUL-terminated fields carry names as they are (no name holds a
		// NUL); lines carry them escaped, so no name forges a line.
		raw := end == "\x00"
		for _, seq := range seqs {
			r := s.results[seq]
			for _, m := range r.matches {
				if raw {
					bw.WriteString(s.img.Name + sep + s.img.Tag + sep + r.name + sep + m.path + end)
					continue
				}
				bw.WriteString(quote.Name(s.img.Name) + sep + quote.Name(s.img.Tag) + sep + quote.Name(r.name) + sep + quote.Name(m.path) + end)
			}
		}
		return flush(bw)
	}
	// Group by layer name in order of first appearance, as the original.
	var order []string
	byName := map[string][]searchMatch{}
	for _, seq := range seqs {
		r := s.results[seq]
		if len(r.matches) == 0 {
			continue
		}
		if _, ok := byName[r.name]; !ok {
			order = append(order, r.name)
		}
		byName[r.name] = append(byName[r.name], r.matches...)
		total += len(r.matches)
	}
	if total == 0 {
		fmt.Fprintln(bw, "No matches found.")
		return flush(bw)
	}
	for _, name := range order {
		fmt.Fprintf(bw, "Layer: %s\n", quote.Name(name))
		for _, m := range byName[name] {
			switch m.typ {
			case "symlink", "hardlink":
				fmt.Fprintf(bw, "  %s -> %s (%s)\n", quote.Name(m.path), quote.Name(m.linkname), m.typ)
			case "file":
				fmt.Fprintf(bw, "  %s (%s, %d bytes)\n", quote.Name(m.path), m.typ, m.size)
			default:
				fmt.Fprintf(bw, "  %s (%s)\n", quote.Name(m.path), m.typ)
			}
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintf(bw, "Found %d match%s in %d layer%s.\n", total, plural(total, "es"), len(order), plural(len(order), "s"))
	return flush(bw)
}

func plural(n int, suffix string) string {
	if n == 1 {
		return ""
	}
	return suffix
}

func flush(bw *bufio.Writer) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("search: print results: %w", err)
	}
	return nil
}
