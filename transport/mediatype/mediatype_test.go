package mediatype

import (
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mt                   string
		index, zstd, isLayer bool
	}{
		{DockerList, true, false, false},
		{v1.MediaTypeImageIndex, true, false, false},
		{DockerManifest, false, false, false},
		{DockerConfig, false, false, false},
		{DockerGzip, false, false, true},
		{DockerTar, false, false, true},
		{DockerZstd, false, true, true},
		{v1.MediaTypeImageLayerZstd, false, true, true},
		{v1.MediaTypeImageLayerGzip, false, false, true},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", false, false, true},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", false, false, true},
		{v1.MediaTypeImageConfig, false, false, false},
		{"", false, false, false},
	} {
		if got := IsIndex(tc.mt); got != tc.index {
			t.Errorf("IsIndex(%q) = %v", tc.mt, got)
		}
		if got := IsZstd(tc.mt); got != tc.zstd {
			t.Errorf("IsZstd(%q) = %v", tc.mt, got)
		}
		if got := IsLayer(tc.mt); got != tc.isLayer {
			t.Errorf("IsLayer(%q) = %v", tc.mt, got)
		}
	}
}
