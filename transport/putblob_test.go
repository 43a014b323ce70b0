package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/occystrap/occystrap/internal/testing/testregistry"
)

// TestPutBlob sends blobs through each of PutBlob's paths to the real
// registry, with chunks cut mid-body for the paths that resume, and reads
// each back.
func TestPutBlob(t *testing.T) {
	small := bytes.Repeat([]byte("s"), 100)
	big := make([]byte, 200<<10)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	for _, tc := range []struct {
		name      string
		blob      []byte
		known     bool // digest and size given
		chunk     int
		cuts      int // PATCHes cut (resumed at the registry's offset)
		wantParts int // opens of the blob's stream
	}{
		{name: "whole", blob: big, known: true, chunk: 1 << 20, wantParts: 1},
		{name: "small streamed", blob: small, chunk: 64 << 10, wantParts: 1},
		{name: "chunked known size", blob: big, known: true, chunk: 64 << 10, wantParts: 1},
		{name: "chunked streamed", blob: big, chunk: 64 << 10, wantParts: 1},
		{name: "chunked streamed resumed", blob: big, chunk: 64 << 10, cuts: 1, wantParts: 2},
		{name: "chunked known size resumed", blob: big, known: true, chunk: 64 << 10, cuts: 1, wantParts: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var faults []testregistry.Fault // Times 0 would cut every chunk
			if tc.cuts > 0 {
				faults = append(faults, testregistry.Fault{Kind: testregistry.CutUpload, Match: testregistry.IsBlobPatch, Times: tc.cuts})
			}
			inj := testregistry.NewInjector(faults...)
			reg := testregistry.Start(t, testregistry.Options{Plain: true, Wrap: inj.Wrap})
			tr, err := New(Options{NoRetries: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			r := tr.Registry(reg.Host, RegistryOptions{Insecure: true})
			opens := 0
			open := func(context.Context) (io.ReadCloser, error) {
				opens++
				return io.NopCloser(bytes.NewReader(tc.blob)), nil
			}
			want := digest.FromBytes(tc.blob)
			p := BlobPut{Size: -1, ChunkSize: tc.chunk, Buf: make([]byte, 32<<10)}
			if tc.known {
				p.Digest, p.Size = want, int64(len(tc.blob))
			}
			res, err := r.PutBlob(ctx, "put/blob", open, p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest != want || res.Size != int64(len(tc.blob)) || res.Existing {
				t.Errorf("PutBlob = %+v, want %s, %d bytes", res, want, len(tc.blob))
			}
			if opens != tc.wantParts {
				t.Errorf("stream opened %d times, want %d", opens, tc.wantParts)
			}
			if n := inj.Fired(testregistry.CutUpload); n != tc.cuts {
				t.Errorf("%d chunks cut, want %d", n, tc.cuts)
			}
			if st := tr.Stats(); st.UploadResumes != int64(tc.cuts) || st.BlobUploads != 1 {
				t.Errorf("%d resumes and %d uploads, want %d and 1", st.UploadResumes, st.BlobUploads, tc.cuts)
			}
			rc, err := r.Blob(ctx, "put/blob", want, int64(len(tc.blob)))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, tc.blob) {
				t.Errorf("blob read back: %d bytes, %v", len(got), err)
			}

			// Again, with Check: the blob is there and is not sent.
			if len(tc.blob) <= len(p.Buf) && !tc.known {
				p.Check = true
				res, err := r.PutBlob(ctx, "put/blob", open, p)
				if err != nil || !res.Existing {
					t.Errorf("PutBlob with Check of a blob the registry has = %+v, %v", res, err)
				}
			}
		})
	}
}

// TestPutBlobSourceErrorWins: when the blob's own stream fails, that is the
// error, not what the registry answered to the cut body.
func TestPutBlobSourceErrorWins(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	tr, err := New(Options{NoRetries: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r := tr.Registry(reg.Host, RegistryOptions{Insecure: true})
	bad := errors.New("source blob corrupt")
	open := func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(make([]byte, 100<<10)), errReader{bad})), nil
	}
	_, err = r.PutBlob(context.Background(), "put/bad", open, BlobPut{Size: -1, ChunkSize: 64 << 10, Buf: make([]byte, 32<<10)})
	if !errors.Is(err, bad) {
		t.Fatalf("PutBlob = %v, want the source's error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestPutBlobIntoOpenSession: into a session already open (the one a
// refused mount opens), a blob of known digest is sent in one PUT whose
// body waits for the stream, opened meanwhile; a stream that fails to
// open is the error, not retried as an upload failure.
func TestPutBlobIntoOpenSession(t *testing.T) {
	ctx := context.Background()
	reg := testregistry.Start(t, testregistry.Options{Plain: true})
	tr, err := New(Options{Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r := tr.Registry(reg.Host, RegistryOptions{Insecure: true})
	blob := bytes.Repeat([]byte("b"), 100<<10)
	want := digest.FromBytes(blob)
	p := BlobPut{Digest: want, Size: int64(len(blob)), ChunkSize: 1 << 20, Buf: make([]byte, 32<<10)}
	session := func(repo string) *Upload {
		mounted, up, err := r.MountBlob(ctx, repo, want, "nowhere/else")
		if err != nil || mounted || up == nil {
			t.Fatalf("MountBlob from a repository without the blob = %v, %v, %v; want a session", mounted, up, err)
		}
		return up
	}

	p.Session = session("put/session")
	before := tr.Stats().Requests
	res, err := r.PutBlob(ctx, "put/session", func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, p)
	if err != nil || res.Digest != want {
		t.Fatalf("PutBlob = %+v, %v", res, err)
	}
	if n := tr.Stats().Requests - before; n != 1 {
		t.Errorf("%d requests for a blob with its session open, want 1 (the PUT)", n)
	}
	if there, _, err := r.BlobExists(ctx, "put/session", want); err != nil || !there {
		t.Errorf("blob not in the registry after the PUT: %v", err)
	}

	bad := errors.New("source unreachable")
	opens := 0
	p.Session = session("put/session2")
	_, err = r.PutBlob(ctx, "put/session2", func(context.Context) (io.ReadCloser, error) {
		opens++
		return nil, bad
	}, p)
	if !errors.Is(err, bad) || opens != 1 {
		t.Errorf("PutBlob = %v after %d opens, want the open's error after 1", err, opens)
	}
}
