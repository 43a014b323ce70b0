package inflate

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/sourcegraph/conc"
)

// ringSize is how much of the end of the output an igzipReader keeps to
// check the last member of a multi-member stream (see check).
const ringSize = 256 << 10

// errReaderClosed is the abort cause of a reader closed before its end.
var errReaderClosed = errors.New("gunzip reader closed")

// igzipReader reads the output of one `igzip -d -c` process whose stdin is
// fed from the source stream by a goroutine the reader owns.
type igzipReader struct {
	z      *Inflater
	cmd    *exec.Cmd
	out    *os.File // igzip's stdout (read end)
	stderr stderrTail
	feed   conc.WaitGroup
	stop   func() bool // unregisters the context's kill

	// Written by the feeder, read after feed.Wait.
	tail    tailWriter
	feedErr error

	mu       sync.Mutex
	abortErr error // why the process was killed: the context's end, or Close

	// Used by the reading goroutine only.
	crc    uint32
	n      int64
	ring   []byte
	ringN  int64 // bytes ever written to ring
	err    error // sticky: the end of the stream (io.EOF) or its failure
	waited sync.Once
	werr   error // the process's exit, set under waited
	closed sync.Once
}

// startIgzip starts igzip on src.
func (z *Inflater) startIgzip(ctx context.Context, src io.Reader) (*igzipReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("gunzip (isal): %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("gunzip (isal): %w", err)
	}
	growPipe(inW)
	growPipe(outR)
	r := &igzipReader{z: z, out: outR}
	r.tail.w = inW
	r.cmd = exec.Command(z.igzip, "-d", "-c")
	r.cmd.Stdin = inR
	r.cmd.Stdout = outW
	r.cmd.Stderr = &r.stderr
	r.cmd.SysProcAttr = sysProcAttr()
	if err := z.track(r); err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		z.untrack(r)
		closeAll(inR, inW, outR, outW)
		return nil, fmt.Errorf("gunzip (isal): start %s: %w", z.igzip, err)
	}
	// The child holds its own copies now.
	inR.Close()
	outW.Close()
	r.feed.Go(func() {
		_, err := io.Copy(&r.tail, src)
		if cerr := inW.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			r.feedErr = err
			// Without all its input igzip cannot finish: stop it now.
			_ = r.cmd.Process.Kill()
		}
	})
	r.stop = context.AfterFunc(ctx, func() { r.abort(context.Cause(ctx)) })
	return r, nil
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// abort kills the process, remembering why (the first reason wins).
func (r *igzipReader) abort(why error) {
	r.mu.Lock()
	if r.abortErr == nil {
		r.abortErr = why
	}
	r.mu.Unlock()
	_ = r.cmd.Process.Kill()
}

func (r *igzipReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.out.Read(p)
	if n > 0 {
		r.account(p[:n])
	}
	if err != nil {
		r.err = r.finish(err)
		if n > 0 {
			return n, nil
		}
		return 0, r.err
	}
	return n, nil
}

// WriteTo copies the output to w with a large buffer (fewer pipe reads
// than io.Copy's 32 KiB).
func (r *igzipReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
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

// account adds p to the output's CRC-32, length and ring.
func (r *igzipReader) account(p []byte) {
	r.crc = crc32.Update(r.crc, crc32.IEEETable, p)
	r.n += int64(len(p))
	if r.ring == nil {
		r.ring = make([]byte, ringSize)
	}
	if len(p) > ringSize {
		p = p[len(p)-ringSize:]
	}
	for len(p) > 0 {
		at := int(r.ringN % ringSize)
		c := copy(r.ring[at:], p)
		p = p[c:]
		r.ringN += int64(c)
	}
}

// wait reaps the process and the feeder, once; safe for concurrent use
// (Inflater.Close and the reader's owner).
func (r *igzipReader) wait() error {
	r.waited.Do(func() {
		r.werr = r.cmd.Wait()
		r.feed.Wait()
		r.z.untrack(r)
	})
	return r.werr
}

// finish ends the stream after the pipe's readErr (io.EOF when igzip
// closed its output) and gives the error to report: the reason the process
// was killed, else the source's own error, else igzip's failure, else the
// end-of-stream check's; io.EOF when all is well.
func (r *igzipReader) finish(readErr error) error {
	if !errors.Is(readErr, io.EOF) {
		r.abort(readErr)
	}
	werr := r.wait()
	r.mu.Lock()
	aborted := r.abortErr
	r.mu.Unlock()
	switch {
	case aborted != nil && !errors.Is(aborted, errReaderClosed):
		return aborted
	case r.feedErr != nil && !errors.Is(r.feedErr, syscall.EPIPE):
		return r.feedErr
	case werr != nil:
		msg := r.stderr.String()
		if msg == "" {
			msg = werr.Error()
		}
		return fmt.Errorf("%w: %s", ErrCorrupt, msg)
	case r.feedErr != nil:
		// igzip succeeded without reading all its input.
		return fmt.Errorf("%w: data after the last gzip member", ErrCorrupt)
	}
	if err := r.check(); err != nil {
		return err
	}
	return io.EOF
}

// check makes up for igzip ignoring what follows the last gzip member
// (Go's reader fails on it): the stream's last 8 bytes must be the
// trailer (CRC-32 and length mod 2^32) of the last member. For a single
// member that is the whole output's; for several, the last member's output
// is the last ISIZE bytes, checked when they are within the ring (256 KiB:
// the last members of BGZF and eStargz streams are empty). A trailer of
// zeros is an empty member only after the end of an empty deflate block
// (03 00, or ff ff for a stored one); otherwise it is zero padding.
func (r *igzipReader) check() error {
	t := r.tail.last[:]
	if r.tail.n < 18 {
		return fmt.Errorf("%w: stream of %d bytes", ErrCorrupt, r.tail.n)
	}
	crc := binary.LittleEndian.Uint32(t[8:12])
	size := binary.LittleEndian.Uint32(t[12:16])
	if crc == 0 && size == 0 && !bytes.Equal(t[6:8], []byte{0x03, 0x00}) && !bytes.Equal(t[6:8], []byte{0xff, 0xff}) {
		return fmt.Errorf("%w: zero bytes after the last gzip member", ErrCorrupt)
	}
	if size == uint32(r.n) && crc == r.crc {
		return nil
	}
	if int64(size) <= min(r.ringN, ringSize) && crc == r.ringCRC(int(size)) {
		return nil
	}
	return fmt.Errorf("%w: data after the last gzip member (or, in a multi-member stream, a last member over %d KiB, which the isal inflater cannot check: set OCCYSTRAP_INFLATE=go)", ErrCorrupt, ringSize>>10)
}

// ringCRC is the CRC-32 of the output's last n bytes (n <= ringSize).
func (r *igzipReader) ringCRC(n int) uint32 {
	end := int(r.ringN % ringSize)
	if n <= end {
		return crc32.ChecksumIEEE(r.ring[end-n : end])
	}
	c := crc32.ChecksumIEEE(r.ring[ringSize-(n-end):])
	return crc32.Update(c, crc32.IEEETable, r.ring[:end])
}

// Close kills igzip if it still runs, waits for it and the feeder, and
// releases the pipe. It returns the stream's error if reading had ended in
// one, nil otherwise (also when the caller stopped early).
func (r *igzipReader) Close() error {
	r.closed.Do(func() {
		if r.err == nil {
			r.abort(errReaderClosed)
		}
		r.wait()
		r.stop()
		r.out.Close()
	})
	if r.err != nil && !errors.Is(r.err, io.EOF) {
		return r.err
	}
	return nil
}

// tailWriter writes to w and keeps the last 16 bytes written.
type tailWriter struct {
	w    io.Writer
	last [16]byte
	n    int64
}

func (t *tailWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	q := p[:n]
	if len(q) >= len(t.last) {
		copy(t.last[:], q[len(q)-len(t.last):])
	} else {
		copy(t.last[:], t.last[len(q):])
		copy(t.last[len(t.last)-len(q):], q)
	}
	t.n += int64(n)
	return n, err
}
