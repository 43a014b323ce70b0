// Package shard splits the images of a bulk run into shards that waste
// little work: images that share layers land in the same shard, so a layer
// several images share is fetched by one shard rather than by all of them,
// while the shards stay balanced in the bytes each must fetch.
//
// Image layers are stacked: images built FROM one base share a prefix of
// their layer list. Plan builds the trie of the images' layer lists (a
// node per layer, a path per image) and cuts it top-down: a subtree whose
// bytes fit in a shard's share stays whole; a bigger one is split into its
// children, each of which then also needs the layers above it. The pieces
// are bin-packed, largest first, each into the shard it adds the fewest
// bytes to after balance. Blobs outside the prefix structure (configs, a
// layer reused at another depth) are counted exactly, by set, wherever they
// land.
//
// The plan depends only on the images given (sorted by name first), so
// every process of a sharded run computes the same plan from the same
// source state. The package imports nothing from this module.
package shard
