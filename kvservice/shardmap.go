package kvservice

import "hash/fnv"

// ShardOf returns the shard, in [0, shards), that owns key: the 64-bit
// FNV-1a hash of the key's bytes modulo the shard count. The mapping is
// part of the data's layout: it must never change for a given count, or
// keys written before would be looked for in another shard after a
// restart (TestShardOfIsStable pins it). shards must be positive.
func ShardOf(key string, shards int) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum64() % uint64(shards))
}
