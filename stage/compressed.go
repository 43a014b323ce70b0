package stage

// CompressedSink is implemented by a sink that can copy layers as the
// source's compressed blobs (a registry output). When it says true and no
// stage changes layer content, the engine tells the source to UseCompressed.
type CompressedSink interface {
	WantsCompressed() bool
}

// CompressedSource is implemented by a source that can hand out compressed
// blobs on request: after UseCompressed its layer bodies implement
// Compressed (their Open still gives the uncompressed tar, decompressed
// lazily), and it sends its manifest as fetched in a KindManifest item.
type CompressedSource interface {
	UseCompressed()
}

// wireCompressed turns passthrough on when the sink wants it, no stage
// changes content, and the source can do it.
func wireCompressed(src Source, stages []Stage, sink Sink) {
	w, ok := sink.(CompressedSink)
	if !ok || !w.WantsCompressed() {
		return
	}
	if ChangesContent(stages) {
		return
	}
	if u, ok := src.(CompressedSource); ok {
		u.UseCompressed()
	}
}
