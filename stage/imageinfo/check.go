package imageinfo

import (
	"fmt"
	"io"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/internal/quote"
	"github.com/occystrap/occystrap/transport/mediatype"
)

// Severities of check results.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// largeLayer is the compressed size above which a layer is "very large".
const largeLayer = 1 << 30

// Result is one check result.
type Result struct {
	Severity string
	Check    string
	Message  string
}

// Results accumulates check results in order.
type Results []Result

func (r *Results) add(sev, id, format string, args ...any) {
	*r = append(*r, Result{Severity: sev, Check: id, Message: fmt.Sprintf(format, args...)})
}

func (r *Results) errorf(id, format string, args ...any) { r.add(SeverityError, id, format, args...) }
func (r *Results) warnf(id, format string, args ...any)  { r.add(SeverityWarning, id, format, args...) }
func (r *Results) infof(id, format string, args ...any)  { r.add(SeverityInfo, id, format, args...) }

// Count is how many results have severity sev.
func (r Results) Count(sev string) int {
	n := 0
	for _, x := range r {
		if x.Severity == sev {
			n++
		}
	}
	return n
}

// CheckMetadata runs the metadata checks (check --fast) on m.
func CheckMetadata(m Meta) Results {
	var r Results
	man, cfg := m.Manifest, m.Config
	if man == nil && cfg == nil {
		r.warnf("metadata", "No manifest or config available; metadata checks skipped")
		return r
	}
	if truthy(man) {
		schema := get(man, "schemaVersion")
		if n, ok := number(schema); !ok || n != 2 {
			r.errorf("schema-version", "Manifest schemaVersion is %s, expected 2", pyStr(schema))
		} else {
			r.infof("schema-version", "Manifest schemaVersion is 2")
		}
	}
	if truthy(cfg) {
		t := get(obj(getOr(cfg, "rootfs", nil)), "type")
		if t != "layers" {
			r.errorf("rootfs-type", "Config rootfs.type is %s, expected \"layers\"", pyRepr(t))
		} else {
			r.infof("rootfs-type", "Config rootfs.type is \"layers\"")
		}
	}
	manLayers := list(getOr(man, "layers", nil))
	diffIDs := list(getOr(obj(getOr(cfg, "rootfs", nil)), "diff_ids", nil))
	if truthy(man) && truthy(cfg) {
		if len(manLayers) != len(diffIDs) {
			r.errorf("layer-count", "Manifest has %d layers but config has %d diff_ids", len(manLayers), len(diffIDs))
		} else {
			r.infof("layer-count", "Layer count matches: %d layers, %d diff_ids", len(manLayers), len(diffIDs))
		}
	}
	if truthy(man) {
		cd := obj(getOr(man, "config", nil))
		if d := get(cd, "digest"); truthy(d) {
			size := "N/A"
			if s := get(cd, "size"); s != nil {
				size = pyStr(s)
			}
			r.infof("config-descriptor", "Config descriptor present (digest: %s, size: %s)", pyStr(d), size)
		} else {
			r.errorf("config-descriptor", "Manifest has no config descriptor")
		}
	}
	if truthy(cfg) {
		history := list(getOr(cfg, "history", nil))
		nonEmpty := 0
		for _, h := range history {
			if !truthy(get(obj(h), "empty_layer")) {
				nonEmpty++
			}
		}
		layerCount := len(diffIDs)
		if truthy(man) {
			layerCount = len(manLayers)
		}
		switch {
		case len(history) == 0:
			r.infof("history-count", "No history entries present")
		case nonEmpty != layerCount:
			r.errorf("history-count", "History has %d non-empty entries but image has %d layers", nonEmpty, layerCount)
		default:
			r.infof("history-count", "History entries match: %d non-empty entries for %d layers", nonEmpty, layerCount)
		}
	}
	if truthy(man) {
		zstd := 0
		for _, l := range manLayers {
			if CompressionOf(get(obj(l), "mediaType")) == CompressionZstd {
				zstd++
			}
		}
		if zstd > 0 {
			r.warnf("zstd-compat", "%d layer(s) use zstd compression; Docker Engine < 20.10 and containerd < 1.5 cannot pull this image", zstd)
		}
		mt := getOr(man, "mediaType", "")
		if mt == v1.MediaTypeImageManifest || mt == v1.MediaTypeImageIndex {
			r.infof("oci-media-type", "Image uses OCI media types; older Docker versions may not handle this correctly")
		}
		if mt == mediatype.DockerManifest {
			r.infof("docker-media-type", "Image uses Docker v2 media types; some OCI-only tooling may not handle this")
		}
		for i, l := range manLayers {
			size := getOr(obj(l), "size", int64(0))
			if n, ok := number(size); ok && n > largeLayer {
				r.warnf("large-layer", "Layer %d is very large: %s compressed", i, FormatSize(size))
			}
		}
	}
	if truthy(cfg) {
		if truthy(get(obj(get(cfg, "config")), "ArgsEscaped")) {
			r.warnf("args-escaped", "config.ArgsEscaped is set (Docker-specific, deprecated in OCI spec)")
		}
	}
	return r
}

// WriteCheckText prints results grouped by severity and the summary line.
func WriteCheckText(w io.Writer, r Results, fast bool) error {
	var b strings.Builder
	for _, g := range []struct{ sev, title string }{
		{SeverityError, "Errors:"}, {SeverityWarning, "Warnings:"}, {SeverityInfo, "Info:"},
	} {
		if r.Count(g.sev) == 0 {
			continue
		}
		b.WriteString(g.title + "\n")
		for _, x := range r {
			if x.Severity == g.sev {
				fmt.Fprintf(&b, "  [%s] %s\n", x.Check, quote.Text(x.Message)) // messages quote the image
			}
		}
		b.WriteString("\n")
	}
	mode := "full"
	if fast {
		mode = "fast (metadata only)"
	}
	fmt.Fprintf(&b, "Check complete (%s): %d error(s), %d warning(s)\n", mode, r.Count(SeverityError), r.Count(SeverityWarning))
	_, err := io.WriteString(w, b.String())
	return err
}

// CheckDocument is the JSON output of check:
// {image, tag, mode, errors, warnings, results: [{severity, check, message}]}.
func CheckDocument(image, tag string, r Results, fast bool) *pyjson.Object {
	doc := &pyjson.Object{}
	doc.Set("image", image)
	doc.Set("tag", tag)
	mode := "full"
	if fast {
		mode = "fast"
	}
	doc.Set("mode", mode)
	doc.Set("errors", int64(r.Count(SeverityError)))
	doc.Set("warnings", int64(r.Count(SeverityWarning)))
	results := []any{}
	for _, x := range r {
		o := &pyjson.Object{}
		o.Set("severity", x.Severity)
		o.Set("check", x.Check)
		o.Set("message", x.Message)
		results = append(results, o)
	}
	doc.Set("results", results)
	return doc
}
