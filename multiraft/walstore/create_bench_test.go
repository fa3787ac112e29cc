package walstore

import (
	"testing"

	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/wal/shared"
)

// BenchmarkCreateGroup measures CreateGroup on a host over walstore: the
// cost of starting one replica (its WAL group, RawNode and bootstrap),
// without processing its first Ready.
func BenchmarkCreateGroup(b *testing.B) {
	w, err := shared.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	h, err := multiraft.New(multiraft.HostConfig{ID: 1, Peers: []multiraft.HostID{2, 3}, Storage: New(w),
		Transport: multiraft.NewMemNetwork().Endpoint(1), App: newApp()})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	members := []multiraft.HostID{1, 2, 3}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := h.CreateGroup(multiraft.GroupConfig{ID: multiraft.GroupID(i + 1), Members: members}); err != nil {
			b.Fatal(err)
		}
	}
}
