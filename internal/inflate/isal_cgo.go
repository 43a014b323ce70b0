//go:build cgo && isal

package inflate

/*
#cgo LDFLAGS: -lisal
#include <stdint.h>
#include <stdlib.h>
#include <isa-l/igzip_lib.h>

// occy_res is what one occy_inflate call did.
typedef struct {
	int ret;        // isal_inflate's return
	uint32_t used;  // input bytes consumed
	uint32_t wrote; // output bytes written
	int finished;   // the member (header, deflate data, trailer) is complete
} occy_res;

// occy_new allocates and initialises a state that parses and checks gzip
// wrappers (header, CRC-32 and ISIZE of the trailer).
static struct inflate_state *occy_new(void) {
	struct inflate_state *s = malloc(sizeof(struct inflate_state));
	if (s == NULL)
		return NULL;
	isal_inflate_init(s);
	s->crc_flag = ISAL_GZIP;
	return s;
}

// occy_next_member readies s for the next member of a multi-member stream.
static void occy_next_member(struct inflate_state *s) {
	isal_inflate_reset(s);
	s->crc_flag = ISAL_GZIP;
}

// occy_inflate inflates in[0:in_len] into out[0:out_len]. The buffers are
// Go memory: the state points to them only during the call.
static occy_res occy_inflate(struct inflate_state *s, uint8_t *in, uint32_t in_len, uint8_t *out, uint32_t out_len) {
	occy_res r;
	s->next_in = in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_len;
	r.ret = isal_inflate(s);
	r.used = in_len - s->avail_in;
	r.wrote = out_len - s->avail_out;
	r.finished = s->block_state == ISAL_BLOCK_FINISH;
	s->next_in = NULL;
	s->avail_in = 0;
	s->next_out = NULL;
	s->avail_out = 0;
	return r;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// Linked reports whether this build links libisal (build tag isal, with
// cgo): ISA-L then runs in process, and igzip is not needed.
const Linked = true

const (
	cgoInSize  = 256 << 10 // input buffer
	cgoOutSize = 256 << 10 // output buffer (Read with a small p, WriteTo)
	// cgoDirect is the smallest p a Read inflates straight into; smaller
	// ones are served from the output buffer (each isal_inflate call keeps
	// 32 KiB of history, so small calls would cost more than a copy).
	cgoDirect = 128 << 10
)

// inPool and outPool recycle the readers' buffers (Close returns them).
var (
	inPool  = sync.Pool{New: func() any { return new([cgoInSize]byte) }}
	outPool = sync.Pool{New: func() any { return new([cgoOutSize]byte) }}
)

// cgoReader inflates a gzip stream in process with libisal's isal_inflate.
// Every member's header, CRC-32 and length are checked by libisal; any
// byte after a member starts the next one, so data or padding after the
// last member fails as in Go.
type cgoReader struct {
	ctx     context.Context
	z       *Inflater
	src     io.Reader
	st      *C.struct_inflate_state // C memory; nil once freed
	cleanup runtime.Cleanup

	in           []byte
	inPos, inEnd int
	srcEOF       bool
	total        int64 // compressed bytes read

	out            []byte
	outPos, outEnd int

	finished bool  // the current member is complete
	begun    int   // members whose header flags were checked
	started  int   // members started (the first at 1)
	err      error // sticky: io.EOF or the stream's failure
}

func (z *Inflater) startCgo(ctx context.Context, src io.Reader) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if z.isClosed() {
		return nil, ErrClosed
	}
	st := C.occy_new()
	if st == nil {
		return nil, fmt.Errorf("gunzip (isal-cgo): out of memory")
	}
	r := &cgoReader{ctx: ctx, z: z, src: src, st: st, in: inPool.Get().(*[cgoInSize]byte)[:]}
	// A reader dropped without Close still frees its state.
	r.cleanup = runtime.AddCleanup(r, func(p unsafe.Pointer) { C.free(p) }, unsafe.Pointer(st))
	return r, nil
}

// isClosed reports whether Close was called.
func (z *Inflater) isClosed() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.closed
}

// free releases the C state once the stream has ended or on Close.
func (r *cgoReader) free() {
	if r.st == nil {
		return
	}
	r.cleanup.Stop()
	C.free(unsafe.Pointer(r.st))
	r.st = nil
}

// fill reads more of the source into the input buffer (which is empty).
func (r *cgoReader) fill() error {
	if err := r.ctx.Err(); err != nil {
		return context.Cause(r.ctx)
	}
	if r.z.isClosed() {
		return ErrClosed
	}
	r.inPos, r.inEnd = 0, 0
	for r.inEnd == 0 && !r.srcEOF {
		n, err := r.src.Read(r.in)
		r.inEnd = n
		r.total += int64(n)
		switch {
		case errors.Is(err, io.EOF):
			r.srcEOF = true
		case err != nil:
			return err // the source's own error wins
		}
	}
	return nil
}

// inflate writes up to len(dst) bytes of output into dst: n > 0, or an
// error (io.EOF at the valid end of the stream).
func (r *cgoReader) inflate(dst []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(dst) == 0 {
		return 0, nil
	}
	n, err := r.step(dst)
	if err != nil {
		r.err = err
		r.free()
		if n > 0 {
			return n, nil
		}
	}
	return n, err
}

func (r *cgoReader) step(dst []byte) (int, error) {
	for {
		if r.inPos == r.inEnd && !r.srcEOF {
			if err := r.fill(); err != nil {
				return 0, err
			}
		}
		if r.finished {
			if r.inPos == r.inEnd {
				return 0, io.EOF // nothing after the last member
			}
			C.occy_next_member(r.st)
			r.finished = false
			r.started++
		}
		fed := r.inEnd - r.inPos
		if r.started == 0 {
			r.started = 1
		}
		if r.begun < r.started && fed >= 4 {
			// RFC 1952: reserved flag bits set are an error (Go's reader
			// says so; libisal does not check).
			r.begun = r.started
			if r.in[r.inPos+3]&0xe0 != 0 {
				return 0, fmt.Errorf("%w: invalid gzip header (reserved flags) near compressed byte %d", ErrCorrupt, r.total-int64(fed))
			}
		}
		var in *C.uint8_t
		if fed > 0 {
			in = (*C.uint8_t)(unsafe.Pointer(&r.in[r.inPos]))
		}
		res := C.occy_inflate(r.st, in, C.uint32_t(fed), (*C.uint8_t)(unsafe.Pointer(&dst[0])), C.uint32_t(min(len(dst), 1<<30)))
		r.inPos += int(res.used)
		n := int(res.wrote)
		if res.ret < 0 {
			return n, fmt.Errorf("%w: %s near compressed byte %d", ErrCorrupt, isalError(int(res.ret)), r.total-int64(r.inEnd-r.inPos))
		}
		r.finished = res.finished != 0
		if n > 0 {
			return n, nil
		}
		if r.finished {
			continue
		}
		if fed > 0 && res.used == 0 {
			return 0, fmt.Errorf("%w: isal_inflate made no progress", ErrCorrupt)
		}
		if fed == 0 && r.srcEOF {
			// No input left, nothing more came out, and the member is not
			// complete.
			if r.total == 0 {
				return 0, fmt.Errorf("%w: empty stream", ErrCorrupt)
			}
			return 0, fmt.Errorf("%w: %w after %d compressed bytes", ErrCorrupt, io.ErrUnexpectedEOF, r.total)
		}
	}
}

// isalError names an isal_inflate failure.
func isalError(ret int) string {
	switch ret {
	case C.ISAL_INVALID_BLOCK:
		return "invalid deflate block"
	case C.ISAL_INVALID_SYMBOL:
		return "invalid deflate symbol"
	case C.ISAL_INVALID_LOOKBACK:
		return "invalid lookback distance"
	case C.ISAL_INVALID_WRAPPER:
		return "invalid gzip header"
	case C.ISAL_UNSUPPORTED_METHOD:
		return "unsupported compression method"
	case C.ISAL_INCORRECT_CHECKSUM:
		return "wrong CRC-32 or length (or header checksum)"
	}
	return fmt.Sprintf("isal_inflate error %d", ret)
}

// Read inflates straight into a large p, else through the output buffer.
func (r *cgoReader) Read(p []byte) (int, error) {
	if r.outPos < r.outEnd {
		n := copy(p, r.out[r.outPos:r.outEnd])
		r.outPos += n
		return n, nil
	}
	if len(p) >= cgoDirect {
		return r.inflate(p)
	}
	if r.err != nil {
		return 0, r.err
	}
	r.outBuf()
	n, err := r.inflate(r.out)
	r.outPos, r.outEnd = 0, n
	if n == 0 {
		return 0, err
	}
	c := copy(p, r.out[:n])
	r.outPos = c
	return c, nil
}

// outBuf gives r its output buffer.
func (r *cgoReader) outBuf() {
	if r.out == nil {
		r.out = outPool.Get().(*[cgoOutSize]byte)[:]
	}
}

// WriteTo inflates into its buffer and writes each piece to w: one copy
// fewer than io.Copy through Read.
func (r *cgoReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if r.outPos < r.outEnd {
		m, err := w.Write(r.out[r.outPos:r.outEnd])
		total += int64(m)
		r.outPos += m
		if err != nil {
			return total, err
		}
	}
	r.outBuf()
	for {
		n, err := r.inflate(r.out)
		if n > 0 {
			m, werr := w.Write(r.out[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
			if m < n {
				return total, io.ErrShortWrite
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close frees the state and gives back the buffers. It returns the
// stream's error if reading had ended in one, nil otherwise (also when the
// caller stopped early).
func (r *cgoReader) Close() error {
	r.free()
	if r.in != nil {
		inPool.Put((*[cgoInSize]byte)(r.in))
		r.in, r.inPos, r.inEnd = nil, 0, 0
	}
	if r.out != nil {
		outPool.Put((*[cgoOutSize]byte)(r.out))
		r.out, r.outPos, r.outEnd = nil, 0, 0
	}
	if r.err != nil && !errors.Is(r.err, io.EOF) {
		return r.err
	}
	if r.err == nil {
		r.err = errReaderClosed
	}
	return nil
}
