package filter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/stage"
)

// Inspect records each layer's Id and size and the config's history, forwards
// the items unchanged and, when its input closes, appends one JSON line to a
// file: {"layers": [...], "name": "image:tag"} with sorted keys, layers newest
// first, as the original's inspect filter.
type Inspect struct {
	img      stage.Image
	path     string
	parallel int

	mu      sync.Mutex
	history []*pyjson.Object
	layers  map[int]inspectLayer
}

type inspectLayer struct {
	name string
	size int64
}

// NewInspect returns an inspect filter for img appending to the file at path.
func NewInspect(img stage.Image, path string, parallel int) *Inspect {
	return &Inspect{img: img, path: path, parallel: parallel, layers: map[int]inspectLayer{}}
}

// Properties: layers pass unchanged.
func (f *Inspect) Properties() stage.StageProperties {
	return stage.StageProperties{Name: "inspect"}
}

// Run records and forwards every item, then appends the line.
func (f *Inspect) Run(ctx context.Context, in <-chan stage.Item, out chan<- stage.Item) error {
	err := passThrough(ctx, in, out, f.parallel, f.note, f.measure)
	if err != nil {
		return err
	}
	return f.write()
}

func (f *Inspect) note(it stage.Item) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if it.Kind == stage.KindLayer {
		f.layers[it.Seq] = inspectLayer{name: it.Name} // skipped: size 0
		return nil
	}
	doc, err := pyjson.Decode(it.Data)
	if err != nil {
		// As the original: the layers are still listed, without history.
		return nil
	}
	root, ok := doc.(*pyjson.Object)
	if !ok {
		return nil
	}
	hv, _ := root.Get("history")
	hist, _ := hv.([]any)
	for _, e := range hist {
		o, ok := e.(*pyjson.Object)
		if !ok {
			continue
		}
		if empty, _ := o.Get("empty_layer"); empty == true {
			continue
		}
		f.history = append(f.history, o)
	}
	return nil
}

func (f *Inspect) measure(ctx context.Context, it stage.Item) error {
	size := it.Size
	if size < 0 {
		var err error
		size, err = bodySize(ctx, it.Body)
		if err != nil {
			return fmt.Errorf("inspect: layer %d (%s): %w", it.Seq, it.Name, err)
		}
	}
	f.mu.Lock()
	f.layers[it.Seq] = inspectLayer{name: it.Name, size: size}
	f.mu.Unlock()
	return nil
}

// bodySize is the size of a body: its file's size, or what reading it gives.
func bodySize(ctx context.Context, b stage.Body) (int64, error) {
	if fb, ok := b.(*stage.FileBody); ok {
		st, err := os.Stat(fb.Path)
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	rc, err := b.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return rc.Read(p)
	}))
}

func (f *Inspect) write() error {
	imageTag := ""
	switch {
	case f.img.Name != "" && f.img.Tag != "":
		imageTag = f.img.Name + ":" + f.img.Tag
	case f.img.Name != "":
		imageTag = f.img.Name
	}
	seqs := make([]int, 0, len(f.layers))
	for seq := range f.layers {
		seqs = append(seqs, seq)
	}
	sort.Ints(seqs)
	entries := make([]any, 0, len(seqs))
	for i, seq := range seqs {
		l := f.layers[seq]
		id := l.name
		if id != "" && !strings.HasPrefix(id, "sha256:") {
			id = "sha256:" + id
		}
		e := map[string]any{
			"Id": id, "Size": l.size, "Created": int64(0), "CreatedBy": "", "Comment": "", "Tags": nil,
		}
		if i < len(f.history) {
			h := f.history[i]
			e["Created"] = createdUnix(h)
			e["CreatedBy"] = getOr(h, "created_by", "")
			e["Comment"] = getOr(h, "comment", "")
		}
		entries = append(entries, e)
	}
	// Newest first; only the top layer carries the tag.
	for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
		entries[i], entries[j] = entries[j], entries[i]
	}
	if len(entries) > 0 && f.img.Name != "" && f.img.Tag != "" {
		entries[0].(map[string]any)["Tags"] = []any{imageTag}
	}
	line, err := pyjson.Marshal(map[string]any{"name": imageTag, "layers": entries}, pyjson.Options{SortKeys: true})
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666) // less the umask
	if err != nil {
		return fmt.Errorf("inspect: open %s: %w", f.path, err)
	}
	if _, err := fh.Write(append(line, '\n')); err != nil {
		_ = fh.Close()
		return fmt.Errorf("inspect: write %s: %w", f.path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("inspect: write %s: %w", f.path, err)
	}
	return nil
}

func getOr(o *pyjson.Object, key string, def any) any {
	if v, ok := o.Get(key); ok {
		return v
	}
	return def
}

// createdUnix is the history entry's "created" as unix seconds: an ISO date
// (UTC when it has no zone), or a number, truncated; 0 when it is neither.
func createdUnix(h *pyjson.Object) int64 {
	v, _ := h.Get("created")
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		if fl, err := strconv.ParseFloat(string(x), 64); err == nil && !math.IsInf(fl, 0) && !math.IsNaN(fl) {
			return int64(fl)
		}
	case string:
		s := x
		if strings.HasSuffix(s, "Z") {
			s = strings.TrimSuffix(s, "Z") + "+00:00"
		}
		for _, layout := range []string{
			"2006-01-02T15:04:05Z07:00", "2006-01-02 15:04:05Z07:00",
			"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02",
		} {
			if t, err := time.Parse(layout, s); err == nil {
				sec := t.Unix()
				if sec < 0 && t.Nanosecond() > 0 {
					sec++ // int() truncates toward zero
				}
				return sec
			}
		}
	}
	return 0
}
