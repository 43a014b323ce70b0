package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/occystrap/occystrap/internal/logging"
	"github.com/occystrap/occystrap/internal/redact"
)

// Outcome is what one image of a run came to: its line in the summary.
type Outcome struct {
	Image  string
	Layers int64
	Bytes  int64 // the image's layers as its source stores them
	Moved  int64 // bytes read from the source
	Digest string
	Err    error
	// Verified is set when the output was checked after it was written;
	// VerifyErrors are the problems found.
	Verified     bool
	VerifyErrors []string
}

// Summary is the end of a process run: the `Summary:` line in console mode
// (`Summary: [S/N images, ]L layers, <size>, X.Xs[, R retries][, K rate
// limits][, F failed][, verified OK|, E verify errors]`), the summary event
// in JSON mode.
type Summary struct {
	Multi               bool
	Images, TotalImages int
	Layers              int64
	Bytes               int64 // the images' layers as their sources store them
	Moved               int64 // bytes read from the sources
	Elapsed             time.Duration
	Retries, RateLimits int64
	Failed              int
	Verified            bool
	VerifyErrors        int
	Digest              string // one image
	Outcomes            []Outcome
}

// Tally is the summary of a multi-image run from its images' outcomes, in
// order; their errors are redacted.
func Tally(outcomes []Outcome) Summary {
	s := Summary{Multi: true, TotalImages: len(outcomes)}
	for _, o := range outcomes {
		if o.Err != nil {
			o.Err = redact.Error(o.Err)
		}
		s.Outcomes = append(s.Outcomes, o)
		if o.Err != nil {
			s.Failed++
			continue
		}
		s.Images++
		s.Layers += o.Layers
		s.Bytes += o.Bytes
		s.Moved += o.Moved
		if o.Verified {
			s.Verified = true
			s.VerifyErrors += len(o.VerifyErrors)
		}
	}
	return s
}

func (s Summary) String() string {
	var b strings.Builder
	b.WriteString("Summary: ")
	if s.Multi {
		fmt.Fprintf(&b, "%d/%d images, ", s.Images, s.TotalImages)
	}
	fmt.Fprintf(&b, "%d layers, %s, %.1fs", s.Layers, Size(s.Bytes), s.Elapsed.Seconds())
	if s.Retries > 0 {
		fmt.Fprintf(&b, ", %d retries", s.Retries)
	}
	if s.RateLimits > 0 {
		fmt.Fprintf(&b, ", %d rate limits", s.RateLimits)
	}
	if s.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed", s.Failed)
	}
	if s.Verified {
		if s.VerifyErrors == 0 {
			b.WriteString(", verified OK")
		} else {
			fmt.Fprintf(&b, ", %d verify errors", s.VerifyErrors)
		}
	}
	return b.String()
}

// Emit writes the summary through p: the line, or the event with every
// counter.
func (s Summary) Emit(p *logging.Printer) {
	p.Status("Summary", s.String(), func(e *zerolog.Event) {
		if s.Multi {
			e.Int("images_done", s.Images).Int("images_total", s.TotalImages).Int("images_failed", s.Failed)
		}
		e.Int64("layers", s.Layers).Int64("bytes", s.Bytes).Int64("bytes_moved", s.Moved).Int64("elapsed_ms", s.Elapsed.Milliseconds()).
			Int64("retries", s.Retries).Int64("rate_limits", s.RateLimits).Bool("verified", s.Verified).
			Int("verify_errors", s.VerifyErrors)
		if s.Digest != "" {
			e.Str("digest", s.Digest)
		}
		if s.Multi {
			arr := zerolog.Arr()
			for _, o := range s.Outcomes {
				d := zerolog.Dict().Str("image", o.Image).Int64("layers", o.Layers).Int64("bytes", o.Bytes).Int64("bytes_moved", o.Moved)
				if o.Digest != "" {
					d = d.Str("digest", o.Digest)
				}
				if o.Err != nil {
					d = d.Str("error", o.Err.Error())
				}
				if len(o.VerifyErrors) > 0 {
					d = d.Strs("verify_errors", o.VerifyErrors)
				}
				arr = arr.Dict(d)
			}
			e.Array("images", arr)
		}
		e.Str("text", s.String())
	})
}

// PrintProblems writes, in console mode, the images of a multi-image run
// that failed and the verification errors of those that did not, or
// that none failed (unless p is quiet).
func (s Summary) PrintProblems(p *logging.Printer) {
	if s.Failed == 0 && s.VerifyErrors == 0 {
		if !p.Quiet {
			p.ConsoleOnly("No failed images.")
		}
		return
	}
	if s.Failed > 0 {
		p.ConsoleOnly("Failed images:")
		for _, o := range s.Outcomes {
			if o.Err != nil {
				p.ConsoleOnly(fmt.Sprintf("  %s: %v", o.Image, o.Err))
			}
		}
	}
	if s.VerifyErrors > 0 {
		p.ConsoleOnly("Verification errors:")
		for _, o := range s.Outcomes {
			if o.Err != nil || !o.Verified {
				continue
			}
			for _, v := range o.VerifyErrors {
				p.ConsoleOnly(fmt.Sprintf("  %s: %s", o.Image, v))
			}
		}
	}
}

// WriteDigests prints the digests of what was written on w (one image:
// the digest one; many, when outcomes is not nil: `IMAGE DIGEST` lines)
// and, when file is set (--digest-file), writes the same to that file (one
// image: the digest alone, as skopeo's --digestfile).
func WriteDigests(w io.Writer, file string, one string, outcomes []Outcome) error {
	var text string
	if outcomes == nil {
		if one == "" {
			return nil
		}
		text = one
	} else {
		var b strings.Builder
		for _, o := range outcomes {
			if o.Err == nil && o.Digest != "" {
				fmt.Fprintf(&b, "%s %s\n", o.Image, o.Digest)
			}
		}
		text = strings.TrimSuffix(b.String(), "\n")
		if text == "" {
			return nil
		}
	}
	fmt.Fprintln(w, text)
	if file == "" {
		return nil
	}
	if outcomes != nil {
		text += "\n"
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		return fmt.Errorf("--digest-file: %w", err)
	}
	return nil
}
