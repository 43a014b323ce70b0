package harness

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Table prints the results: per scenario, the ratios first, then the
// absolute figures (median, with min-max for the wall time).
func Table(w io.Writer, rs []Result) {
	for _, r := range rs {
		fmt.Fprintf(w, "\n== %s: %s (%d image(s), %d unique blobs, %.1f MiB)\n", r.Scenario, r.Desc, r.Images, r.UniqueBlobs, r.BlobMB)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "tool\t×floor\t×gofloor\tours/tool\twall s\t(min-max)\tcpu s\trss MiB\treqs\tconns\ttls\twire MiB\t")
		for _, t := range r.Tools {
			if t.Status != StatusOK {
				fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\t\t\t\t\n", t.Tool, firstLine(shorten(t.Status, 70)))
				continue
			}
			s := t.Summary
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t(%.2f-%.2f)\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t\n", t.Tool,
				ratio(t.VsFloor), ratio(t.VsGunzipFloor), ratio(t.OursOver), s.WallSec.Median, s.WallSec.Min, s.WallSec.Max,
				s.CPUSec.Median, s.MaxRSSMB.Median, s.Requests.Median, s.Conns.Median, s.Handshakes.Median, s.WireMB.Median)
		}
		_ = tw.Flush()
	}
}

func ratio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "\t", " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
