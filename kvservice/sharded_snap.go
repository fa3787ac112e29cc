package kvservice

import (
	"errors"

	"github.com/raftkit/raft/transport"
)

// A ShardedServer's shard snapshots travel inline: multiraft sends a
// group's snapshot inside a batch frame of its NetTransport, whose size is
// bounded (transport.DefaultMaxMessageSize, 16 MiB). So a snapshot's data is
// the shard itself, in the stream format of snapstream.go (header, then
// every key and value, then the trailer), read from a Pebble snapshot at
// the applied index, and it may be at most half a frame (8 MiB), leaving
// room for the other messages of the frame. A shard whose stream would be
// larger is not snapshotted: its log is kept, so followers that lag catch
// up from the log, and the WAL grows with that shard's writes until the
// shard shrinks. The remedy is more shards (the bound is per shard).

// errSnapshotTooLarge: the shard's snapshot exceeds the inline bound.
var errSnapshotTooLarge = errors.New("kvservice: shard snapshot larger than a peer frame allows")

// snapshotLimit is the largest inline snapshot, in bytes.
func (s *ShardedServer) snapshotLimit() int {
	if h := s.cfg.hooks; h != nil && h.snapshotLimit > 0 {
		return h.snapshotLimit
	}
	return int(transport.DefaultMaxMessageSize / 2)
}

// encodeShardSnapshot returns the shard's stream at applied, or
// errSnapshotTooLarge once it passes limit bytes. The caller holds the
// shard (its worker), so the store has it exactly as of applied.
func (r *shardRep) encodeSnapshot(applied, keys uint64, limit int) ([]byte, error) {
	h := &heldSnapshot{snap: r.sh.st.db.NewSnapshot(),
		hdr: snapHeader{Group: r.sh.group, Index: applied, Keys: keys, Config: r.cfg.clone()}}
	h.refs.Store(1)
	defer h.release()
	buf := &boundedBuffer{limit: limit}
	if _, err := (&snapSource{h: h, sh: r.sh}).WriteTo(buf); err != nil {
		return nil, err
	}
	return buf.b, nil
}

// boundedBuffer collects writes up to limit bytes.
type boundedBuffer struct {
	b     []byte
	limit int
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > w.limit {
		return 0, errSnapshotTooLarge
	}
	w.b = append(w.b, p...)
	return len(p), nil
}
