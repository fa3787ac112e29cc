package kvservice

import (
	"testing"

	"go.uber.org/zap"
)

// The state store's block cache holds storeCacheBytes, not Pebble's
// 8 MiB default: the read before each applied write must find the index
// and filter blocks of recent tables in memory.
func TestStateStoreBlockCacheSize(t *testing.T) {
	st, err := openStateStore(t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if st.cache == nil || st.cache.MaxSize() != storeCacheBytes {
		t.Fatalf("block cache %v, want one of %d bytes", st.cache, storeCacheBytes)
	}
}
