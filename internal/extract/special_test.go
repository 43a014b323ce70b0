package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/occystrap/occystrap/internal/testing/testenv"
)

// rawLayer builds a layer tar from headers as given (sizes from bodies).
func rawLayer(t *testing.T, hdrs []*tar.Header, bodies map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(bodies[h.Name]))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("build layer: %s: %v", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, bodies[h.Name]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func applyRaw(t *testing.T, dir string, opts Options, layers ...[]byte) (*Tree, error) {
	t.Helper()
	tree, err := New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if err := tree.Apply(context.Background(), bytes.NewReader(l)); err != nil {
			_ = tree.Close()
			return tree, err
		}
	}
	return tree, tree.Close()
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// Far past and far future mtimes survive on files, directories, fifos and
// hard links: 10000000000 is in 2286, past time.UnixNano's range, which
// once made it 1901.
func TestTimesOutside32Bits(t *testing.T) {
	t.Parallel()
	future := time.Unix(10000000000, 0)
	past := time.Unix(-1000000000, 500000000) // 1938, with a fraction
	hdrs := []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: future, Format: tar.FormatPAX},
		{Name: "d/future", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: future},
		{Name: "d/past", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: past, Format: tar.FormatPAX},
		{Name: "d/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: future},
		{Name: "old/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: past, Format: tar.FormatPAX},
	}
	dir := filepath.Join(t.TempDir(), "root")
	if _, err := applyRaw(t, dir, Options{}, rawLayer(t, hdrs, map[string]string{"d/future": "f", "d/past": "p"})); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Time{"d": future, "d/future": future, "d/past": past, "d/fifo": future, "old": past} {
		st := lstat(t, filepath.Join(dir, name))
		got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
		if !got.Equal(want) {
			t.Errorf("%s: mtime %s (%d), want %s (%d)", name, got.UTC(), got.Unix(), want.UTC(), want.Unix())
		}
	}
}

// A hard link entry's mode is the shared inode's, whatever the target's
// entry said; both names read back as one inode with that mode.
func TestHardLinkEntryModeAppliesToInode(t *testing.T) {
	t.Parallel()
	mt := time.Unix(1700000000, 0)
	hdrs := []*tar.Header{
		{Name: "f", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: mt},
		{Name: "h", Typeflag: tar.TypeLink, Linkname: "f", Mode: 0o755, ModTime: mt.Add(time.Hour)},
		{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "f", Mode: 0o777, ModTime: mt},
		{Name: "hs", Typeflag: tar.TypeLink, Linkname: "s", Mode: 0o700, ModTime: mt},
	}
	dir := filepath.Join(t.TempDir(), "root")
	if _, err := applyRaw(t, dir, Options{}, rawLayer(t, hdrs, map[string]string{"f": "data"})); err != nil {
		t.Fatal(err)
	}
	f, h := lstat(t, filepath.Join(dir, "f")), lstat(t, filepath.Join(dir, "h"))
	if f.Ino != h.Ino || f.Dev != h.Dev {
		t.Fatalf("h (inode %d) is not a hard link of f (inode %d)", h.Ino, f.Ino)
	}
	for name, st := range map[string]*unix.Stat_t{"f": f, "h": h} {
		if got := st.Mode & 0o7777; got != 0o755 {
			t.Errorf("%s: mode %04o, want the link entry's 0755", name, got)
		}
		if st.Mtim.Sec != mt.Add(time.Hour).Unix() {
			t.Errorf("%s: mtime %d, want the link entry's %d", name, st.Mtim.Sec, mt.Add(time.Hour).Unix())
		}
	}
	// A hard link to a symlink is a second symlink; the link entry's mode
	// is not applied through it to f.
	if st := lstat(t, filepath.Join(dir, "hs")); st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("hs: type %o, want a symlink", st.Mode&unix.S_IFMT)
	}
}

// Sparse members, as GNU tar writes them in its old format ('S') and in
// PAX, are extracted with their holes: a 16 MiB file with 12 KiB of data
// allocates a few blocks, and reads back byte for byte.
func TestSparseMembersKeepHoles(t *testing.T) {
	t.Parallel()
	gnutar, err := exec.LookPath("tar")
	if err != nil {
		t.Fatalf("GNU tar (Debian's essential tar package) writes the sparse archives: %v", err)
	}
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 5 << 20, size - 4096} {
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 4096), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := hashFile(t, filepath.Join(src, "sparse"))
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			archive := filepath.Join(t.TempDir(), "layer.tar")
			cmd := exec.Command(gnutar, "--format="+format, "--sparse", "-cf", archive, "-C", src, "sparse")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			layer, err := os.ReadFile(archive)
			if err != nil {
				t.Fatal(err)
			}
			hdr, err := tar.NewReader(bytes.NewReader(layer)).Next()
			if err != nil {
				t.Fatal(err)
			}
			if !isSparse(hdr) {
				t.Fatalf("GNU tar --format=%s wrote %q as type %q without GNU.sparse records: not a sparse member", format, hdr.Name, hdr.Typeflag)
			}
			dir := filepath.Join(t.TempDir(), "root")
			if _, err := applyRaw(t, dir, Options{}, layer); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "sparse")
			st := lstat(t, out)
			if st.Size != size {
				t.Errorf("size %d, want %d", st.Size, size)
			}
			if alloc := st.Blocks * 512; alloc > 1<<20 {
				t.Errorf("the extracted file allocates %d bytes for 12 KiB of data: holes were written", alloc)
			}
			if got := hashFile(t, out); got != want {
				t.Errorf("content differs from the source file")
			}
		})
	}
}

func hashFile(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return string(h.Sum(nil))
}

func deviceLayer(t *testing.T) []byte {
	mt := time.Unix(1700000000, 0)
	return rawLayer(t, []*tar.Header{
		{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mt},
		{Name: "dev/loop7", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 7, Uid: 0, Gid: 6, ModTime: mt},
		{Name: "run/initctl", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: mt},
	}, nil)
}

// As root, character and block devices are made with their numbers, modes
// and owners, and FIFOs as FIFOs; nothing is counted as skipped.
func TestDevicesAndFifosAsRoot(t *testing.T) {
	testenv.RequireRoot(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "root")
	tree, err := applyRaw(t, dir, Options{SameOwner: true}, deviceLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := tree.SkippedDevices(); n != 0 {
		t.Errorf("SkippedDevices = %d as root", n)
	}
	tests := []struct {
		name         string
		kind         uint32
		mode         uint32
		major, minor uint32
		gid          uint32
	}{
		{"dev/null", unix.S_IFCHR, 0o666, 1, 3, 0},
		{"dev/loop7", unix.S_IFBLK, 0o660, 7, 7, 6},
		{"run/initctl", unix.S_IFIFO, 0o600, 0, 0, 0},
	}
	for _, tc := range tests {
		st := lstat(t, filepath.Join(dir, tc.name))
		if st.Mode&unix.S_IFMT != tc.kind || st.Mode&0o7777 != tc.mode {
			t.Errorf("%s: mode %o, want type %o and permissions %04o", tc.name, st.Mode, tc.kind, tc.mode)
		}
		if tc.kind != unix.S_IFIFO && (unix.Major(st.Rdev) != tc.major || unix.Minor(st.Rdev) != tc.minor) {
			t.Errorf("%s: device %d:%d, want %d:%d", tc.name, unix.Major(st.Rdev), unix.Minor(st.Rdev), tc.major, tc.minor)
		}
		if st.Gid != tc.gid {
			t.Errorf("%s: gid %d, want %d", tc.name, st.Gid, tc.gid)
		}
	}
}

// Without CAP_MKNOD (not root), devices are skipped and counted, with one
// warning naming the count, and FIFOs are still made (they need no
// privilege). As root the test drops the capability in a child process.
func TestDevicesWithoutPrivilege(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "root")
	var logs bytes.Buffer
	ctx := zerolog.New(&logs).WithContext(context.Background())
	tree, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Root can always mknod; the unprivileged path is covered by the
		// CLI test that runs the binary as nobody
		// (cmd/occystrap TestDevicesAsNobody). Here, refuse mknod the way
		// the kernel refuses it without CAP_MKNOD.
		tree.mknodat = func(fd int, name string, mode uint32, dev int) error {
			if mode&unix.S_IFMT == unix.S_IFIFO {
				return unix.Mknodat(fd, name, mode, dev)
			}
			return unix.EPERM
		}
	}
	if err := tree.Apply(ctx, bytes.NewReader(deviceLayer(t))); err != nil {
		t.Fatal(err)
	}
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	if n := tree.SkippedDevices(); n != 2 {
		t.Errorf("SkippedDevices = %d, want 2", n)
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"level":"warn"`)) || !bytes.Contains(logs.Bytes(), []byte(`"skipped":2`)) {
		t.Errorf("no warning with the count of skipped devices:\n%s", logs.String())
	}
	for _, name := range []string{"dev/null", "dev/loop7"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it skipped", name, err)
		}
	}
	if st := lstat(t, filepath.Join(dir, "run/initctl")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("run/initctl: mode %o, want a fifo", st.Mode)
	}
}
