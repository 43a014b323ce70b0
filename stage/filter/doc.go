// Package filter holds the pipeline's filters: stages that rewrite or
// inspect layers while they stream, several layers at once (up to the
// parallelism given to each constructor), never a whole layer in memory.
//
// Content-changing filters (Exclude, NormalizeTimestamps) are Rewriters: each
// layer is rewritten by tarfmt from its Body into a temporary file while it is
// hashed; the new layer (a temporary FileBody) gets its sha256 as DiffID and
// as Name, and the old body is released. The config is held until the input
// closes, then its rootfs.diff_ids are rewritten and it is re-serialized the
// way Python's json.dumps does and renamed "<sha256 hex>.json", so it reaches
// the next stage after every layer. Skipped layers (no Body) pass unchanged;
// their DiffID in the config is mapped through the DiffIDMap when one is
// shared and knows it.
//
// Passthrough filters (Search, Inspect) forward every item unchanged: each
// layer is read (Search lists its members, Inspect measures it) before it is
// forwarded, and what they gathered is written when their input closes.
//
// Each stage declares its capabilities in Properties (stage.StageProperties):
//   - ChangesContent: true when the stage changes layer content, so the
//     layers it emits are not the source's compressed blobs (a registry output
//     must not copy compressed blobs through). Rewriters say true, Search and
//     Inspect false.
//   - NeedsAllLayers: true when the stage must see every layer's
//     content, so no layer may be skipped because the destination has it
//     (Search).
//
// Each stage value serves one run (one image); its Run must not be called
// twice. Discard is a sink that drops everything (for `occystrap search`).
package filter
