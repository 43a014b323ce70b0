package imageinfo

import (
	"context"
	"fmt"
	"io"

	"github.com/occystrap/occystrap/internal/pyjson"
	"github.com/occystrap/occystrap/stage"
	"github.com/occystrap/occystrap/stage/filter"
)

// The info and check commands' output, in either --output-format: "json",
// or anything else for the original's text.

// FormatJSON is the --output-format that prints JSON; any other prints text.
const FormatJSON = "json"

// WriteInfo prints one image's info document.
func WriteInfo(w io.Writer, format string, info *pyjson.Object) error {
	if format == FormatJSON {
		return WriteJSON(w, info)
	}
	return WriteInfoText(w, info)
}

// ErrorInfo is the info document of an image whose info could not be
// read: its name, tag and the error.
func ErrorInfo(image, tag string, err error) *pyjson.Object {
	o := &pyjson.Object{}
	o.Set("image", image)
	o.Set("tag", tag)
	o.Set("error", err.Error())
	return o
}

// WriteInfos prints the info documents of many images in order: a JSON
// array, or the texts separated by "---" lines. It returns how many of them
// are ErrorInfo documents.
func WriteInfos(w io.Writer, format string, infos []*pyjson.Object) (failed int, err error) {
	for _, o := range infos {
		if _, ok := o.Get("error"); ok {
			failed++
		}
	}
	if format == FormatJSON {
		all := make([]any, len(infos))
		for i, o := range infos {
			all[i] = o
		}
		return failed, WriteJSON(w, all)
	}
	for i, o := range infos {
		if i > 0 {
			fmt.Fprint(w, "\n---\n\n")
		}
		if err := WriteInfoText(w, o); err != nil {
			return failed, err
		}
	}
	return failed, nil
}

// Check checks the image m describes: its metadata and, unless fast, every
// layer of full (the image as a source, read once through a LayerCheck,
// parallel layers at once).
func Check(ctx context.Context, m Meta, full func(context.Context) stage.Source, fast bool, parallel int) (Results, error) {
	results := CheckMetadata(m)
	if fast {
		return results, nil
	}
	lc := NewLayerCheck(m, parallel)
	par := max(parallel, 1)
	if _, err := stage.Run(ctx, full(ctx), []stage.Stage{lc}, filter.Discard{}, stage.Options{Window: 2 * par, Buffer: par}); err != nil {
		return nil, err
	}
	return append(results, lc.Results()...), nil
}

// WriteCheck prints the results of a check of m.
func WriteCheck(w io.Writer, format string, m Meta, r Results, fast bool) error {
	if format == FormatJSON {
		return WriteJSON(w, CheckDocument(m.Image, m.Tag, r, fast))
	}
	return WriteCheckText(w, r, fast)
}
