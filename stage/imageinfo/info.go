package imageinfo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/internal/quote"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// Meta is what an input knows of an image without reading its layers.
type Meta struct {
	Image, Tag string
	// Manifest is the distribution manifest (nil when the input has none:
	// tar and docker inputs).
	Manifest *pyjson.Object
	// Config is the image config (nil when unknown).
	Config *pyjson.Object
}

// ParseMeta parses a manifest and a config; either may be nil (absent).
func ParseMeta(image, tag string, manifest, config []byte) (Meta, error) {
	m := Meta{Image: image, Tag: tag}
	for _, p := range []struct {
		what string
		raw  []byte
		dst  **pyjson.Object
	}{{"manifest", manifest, &m.Manifest}, {"config", config, &m.Config}} {
		if p.raw == nil {
			continue
		}
		v, err := pyjson.Decode(p.raw)
		if err != nil {
			return m, fmt.Errorf("parse %s of %s:%s: %w", p.what, image, tag, err)
		}
		o, ok := v.(*pyjson.Object)
		if !ok {
			return m, fmt.Errorf("parse %s of %s:%s: %w", p.what, image, tag, ErrNotObject)
		}
		*p.dst = o
	}
	return m, nil
}

// Compression names as the original's detect_compression_from_media_type
// gives them.
const (
	CompressionGzip    = "gzip"
	CompressionZstd    = "zstd"
	CompressionNone    = "none"
	CompressionUnknown = "unknown"
)

// CompressionOf is the compression a layer media type names.
func CompressionOf(mediaType any) string {
	mt, ok := mediaType.(string)
	if !ok {
		return CompressionUnknown
	}
	switch mt {
	case mediatype.DockerGzip, v1.MediaTypeImageLayerGzip:
		return CompressionGzip
	case mediatype.DockerZstd, v1.MediaTypeImageLayerZstd:
		return CompressionZstd
	case v1.MediaTypeImageLayer:
		return CompressionNone
	}
	switch {
	case strings.HasSuffix(mt, "+gzip") || strings.HasSuffix(mt, ".gzip"):
		return CompressionGzip
	case strings.HasSuffix(mt, "+zstd") || strings.HasSuffix(mt, ".zstd"):
		return CompressionZstd
	case strings.HasSuffix(mt, ".tar") && !strings.Contains(mt, "+"):
		return CompressionNone
	}
	return CompressionUnknown
}

// Info builds the info document: keys in the original's order, present
// only when the manifest or config gives them.
func Info(m Meta) *pyjson.Object {
	info := &pyjson.Object{}
	info.Set("image", m.Image)
	info.Set("tag", m.Tag)
	var layers []any
	if man := m.Manifest; truthy(man) {
		info.Set("schema_version", get(man, "schemaVersion"))
		info.Set("media_type", get(man, "mediaType"))
		cd := obj(getOr(man, "config", nil))
		info.Set("config_digest", get(cd, "digest"))
		info.Set("config_size", get(cd, "size"))
		ml := list(getOr(man, "layers", nil))
		info.Set("layer_count", int64(len(ml)))
		var total int64
		for _, l := range ml {
			n, _ := number(getOr(obj(l), "size", int64(0)))
			total += n
		}
		info.Set("total_compressed_size", total)
		layers = []any{}
		for i, l := range ml {
			lo := obj(l)
			mt := getOr(lo, "mediaType", "")
			li := &pyjson.Object{}
			li.Set("index", int64(i))
			li.Set("digest", get(lo, "digest"))
			li.Set("size", get(lo, "size"))
			li.Set("media_type", mt)
			li.Set("compression", CompressionOf(mt))
			layers = append(layers, li)
		}
		info.Set("layers", layers)
	}
	if cfg := m.Config; truthy(cfg) {
		info.Set("architecture", getOr(cfg, "architecture", ""))
		info.Set("os", getOr(cfg, "os", ""))
		info.Set("variant", getOr(cfg, "variant", ""))
		info.Set("created", getOr(cfg, "created", ""))
		diffIDs := getOr(obj(getOr(cfg, "rootfs", nil)), "diff_ids", []any{})
		info.Set("diff_ids", diffIDs)
		ids := list(diffIDs)
		if layers != nil {
			for i, l := range layers {
				if i < len(ids) {
					l.(*pyjson.Object).Set("diff_id", ids[i])
				}
			}
		} else {
			info.Set("layer_count", int64(len(ids)))
			layers = []any{}
			for i, d := range ids {
				li := &pyjson.Object{}
				li.Set("index", int64(i))
				li.Set("diff_id", d)
				layers = append(layers, li)
			}
			info.Set("layers", layers)
		}
		history := list(getOr(cfg, "history", nil))
		info.Set("history_count", int64(len(history)))
		var empty int64
		for _, h := range history {
			if truthy(get(obj(h), "empty_layer")) {
				empty++
			}
		}
		info.Set("empty_layer_count", empty)
		n := 0
		for _, h := range history {
			if truthy(get(obj(h), "empty_layer")) {
				continue
			}
			if n < len(layers) {
				layers[n].(*pyjson.Object).Set("created_by", getOr(obj(h), "created_by", ""))
			}
			n++
		}
		ic := obj(get(cfg, "config"))
		labels := get(ic, "Labels")
		if !truthy(labels) {
			labels = &pyjson.Object{}
		}
		info.Set("labels", labels)
		env := get(ic, "Env")
		if !truthy(env) {
			env = []any{}
		}
		info.Set("env", env)
		info.Set("entrypoint", get(ic, "Entrypoint"))
		info.Set("cmd", get(ic, "Cmd"))
		info.Set("working_dir", getOr(ic, "WorkingDir", ""))
		info.Set("exposed_ports", keysOf(get(ic, "ExposedPorts")))
		info.Set("volumes", keysOf(get(ic, "Volumes")))
	}
	return info
}

// keysOf is list((v or {}).keys()).
func keysOf(v any) []any {
	out := []any{}
	if o := obj(v); o != nil {
		for _, k := range o.Keys {
			out = append(out, k)
		}
	}
	return out
}

// JSON is json.dumps(v, indent=2): keys in order, non-ASCII escaped.
func JSON(v any) ([]byte, error) {
	compact, err := pyjson.Marshal(v, pyjson.Options{})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, compact, "", "  "); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteJSON writes v as JSON (JSON) and a newline, as click.echo does.
func WriteJSON(w io.Writer, v any) error {
	b, err := JSON(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// IndexEntry is one image a manifest list or index holds.
type IndexEntry struct {
	Platform  string // os/arch[/variant], or "" when the entry has none
	Digest    string
	MediaType string
}

// SetIndex records, under the key "index" (after the original's keys), the
// manifest list or index the image was chosen from: its digest, media type
// and entries. WriteInfoText prints it before the image.
func SetIndex(info *pyjson.Object, dgst, mediaType string, entries []IndexEntry) {
	idx := &pyjson.Object{}
	idx.Set("digest", dgst)
	idx.Set("media_type", mediaType)
	ms := make([]any, 0, len(entries))
	for _, e := range entries {
		o := &pyjson.Object{}
		var p any
		if e.Platform != "" {
			p = e.Platform
		}
		o.Set("platform", p)
		o.Set("digest", e.Digest)
		o.Set("media_type", e.MediaType)
		ms = append(ms, o)
	}
	idx.Set("manifests", ms)
	info.Set("index", idx)
}

// writeIndexText prints the "index" key SetIndex records, if any.
func writeIndexText(line func(string, ...any), info *pyjson.Object) {
	v, ok := info.Get("index")
	idx, isObj := v.(*pyjson.Object)
	if !ok || !isObj {
		return
	}
	line("Index:         %s", pyStr(get(idx, "digest")))
	line("Index type:    %s", pyStr(get(idx, "media_type")))
	ms, _ := get(idx, "manifests").([]any)
	line("Platforms:     %d", len(ms))
	for _, m := range ms {
		o, ok := m.(*pyjson.Object)
		if !ok {
			continue
		}
		p := "(no platform)"
		if s, ok := get(o, "platform").(string); ok {
			p = s
		}
		line("  %-16s %s", p, pyStr(get(o, "digest")))
	}
	line("")
}

// WriteInfoText prints an info document as the original's text output
// (preceded, for an image chosen from a list, by the list).
func WriteInfoText(w io.Writer, info *pyjson.Object) error {
	var b strings.Builder
	// Every string printed comes from the image: control characters in it
	// are escaped (package internal/quote), so that none reaches the
	// terminal or forges a line.
	line := func(format string, args ...any) {
		for i, a := range args {
			if s, ok := a.(string); ok {
				args[i] = quote.Text(s)
			}
		}
		fmt.Fprintf(&b, format+"\n", args...)
	}
	writeIndexText(line, info)
	line("Image:         %s:%s", pyStr(get(info, "image")), pyStr(get(info, "tag")))
	if has(info, "media_type") {
		line("Media type:    %s", pyStr(get(info, "media_type")))
	}
	if has(info, "schema_version") {
		line("Schema:        v%s", pyStr(get(info, "schema_version")))
	}
	if has(info, "architecture") {
		arch := pyStr(get(info, "architecture"))
		if truthy(get(info, "variant")) {
			arch += "/" + pyStr(get(info, "variant"))
		}
		line("Platform:      %s/%s", pyStr(getOr(info, "os", "")), arch)
	}
	if has(info, "created") {
		line("Created:       %s", pyStr(get(info, "created")))
	}
	if has(info, "config_digest") {
		line("Config digest: %s", pyStr(get(info, "config_digest")))
	}
	if has(info, "config_size") {
		line("Config size:   %s", FormatSize(get(info, "config_size")))
	}
	line("")
	lc, _ := number(getOr(info, "layer_count", int64(0)))
	line("Layers: %d", lc)
	if has(info, "total_compressed_size") {
		line("Total compressed size: %s", FormatSize(get(info, "total_compressed_size")))
	}
	if layers := list(get(info, "layers")); len(layers) > 0 {
		line("")
		b.WriteString(layerTable(layers))
		line("")
	}
	if has(info, "history_count") {
		line("")
		hc, _ := number(get(info, "history_count"))
		ec, _ := number(getOr(info, "empty_layer_count", int64(0)))
		line("History: %d entries (%d empty)", hc, ec)
	}
	hasConfig := false
	for _, k := range []string{"entrypoint", "cmd", "working_dir", "env", "labels", "exposed_ports", "volumes"} {
		hasConfig = hasConfig || has(info, k)
	}
	if hasConfig {
		line("")
		line("Container Config:")
		if v := get(info, "entrypoint"); truthy(v) {
			line("  Entrypoint: %s", pyStr(v))
		}
		if v := get(info, "cmd"); truthy(v) {
			line("  Cmd:        %s", pyStr(v))
		}
		if v := get(info, "working_dir"); truthy(v) {
			line("  WorkingDir: %s", pyStr(v))
		}
		if v := get(info, "exposed_ports"); truthy(v) {
			line("  Ports:      %s", joinStr(v))
		}
		if v := get(info, "volumes"); truthy(v) {
			line("  Volumes:    %s", joinStr(v))
		}
		if v := get(info, "env"); truthy(v) {
			line("  Environment:")
			for _, e := range envList(v) {
				line("    %s", pyStr(e))
			}
		}
		if v := obj(get(info, "labels")); truthy(v) {
			line("  Labels:")
			for _, k := range v.Keys {
				line("    %s=%s", k, pyStr(v.Values[k]))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// envList iterates v as Python's for loop would (a string by character).
func envList(v any) []any {
	if s, ok := v.(string); ok {
		var out []any
		for _, r := range s {
			out = append(out, string(r))
		}
		return out
	}
	if o := obj(v); o != nil {
		return keysOf(o)
	}
	return list(v)
}

// joinStr is ', '.join(v).
func joinStr(v any) string {
	var parts []string
	for _, e := range envList(v) {
		parts = append(parts, pyStr(e))
	}
	return strings.Join(parts, ", ")
}

// layerTable is the PrettyTable of layers, columns present when any layer
// has the field.
func layerTable(layers []any) string {
	anyHas := func(k string) bool {
		for _, l := range layers {
			if has(obj(l), k) {
				return true
			}
		}
		return false
	}
	hasDigest, hasDiffID, hasSize := anyHas("digest"), anyHas("diff_id"), anyHas("size")
	hasComp, hasCreated := anyHas("compression"), anyHas("created_by")
	t := table{fields: []string{"#"}, maxWidth: map[int]int{}}
	if hasDigest {
		t.fields = append(t.fields, "Compressed Digest")
	}
	if hasDiffID {
		t.fields = append(t.fields, "DiffID")
	}
	if hasSize {
		t.fields = append(t.fields, "Size")
	}
	if hasComp {
		t.fields = append(t.fields, "Compression")
	}
	if hasCreated {
		t.fields = append(t.fields, "Created By")
		t.maxWidth[len(t.fields)-1] = 50
	}
	for _, l := range layers {
		lo := obj(l)
		row := []string{pyStr(get(lo, "index"))}
		if hasDigest {
			row = append(row, cut(pyStr(getOr(lo, "digest", ""))))
		}
		if hasDiffID {
			row = append(row, cut(pyStr(getOr(lo, "diff_id", ""))))
		}
		if hasSize {
			row = append(row, FormatSize(get(lo, "size")))
		}
		if hasComp {
			row = append(row, pyStr(getOr(lo, "compression", "")))
		}
		if hasCreated {
			row = append(row, pyStr(getOr(lo, "created_by", "")))
		}
		for i := range row {
			row[i] = cellText(row[i])
		}
		t.rows = append(t.rows, row)
	}
	return t.String()
}

// cellText escapes the control characters of a table cell's text from the
// image, line by line: a cell may span lines, as in the original's table.
func cellText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = quote.Text(l)
	}
	return strings.Join(lines, "\n")
}
