package kvservice

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble"
	"go.uber.org/zap"

	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

// A ShardedServer's shard snapshot comes in one of two forms.
//
// Inline, for a small shard: the raft snapshot's Data is the shard itself,
// in the stream format of snapstream.go (header, every key and value,
// trailer), read from a Pebble snapshot at the applied index; at most
// inlineSnapshotLimit (8 MiB). It is self-contained in the WAL and goes to
// a follower whole, in the MsgSnap.
//
// Streamed, for a larger one: the Data is a snapDescriptor (shard, applied
// index, estimated size, source member), so taking the snapshot reads
// nothing. When a follower needs it, multiraft streams it out of band
// (multiraft.SnapshotStreams, on a connection of its own): the leader
// iterates a Pebble snapshot of the shard's key range taken as the stream
// starts (so at an applied index at or past the raft snapshot's, which the
// stream's header says) into the stream; the follower spools the stream to
// a file under Dir/snapshots, made durable before raft sees the snapshot,
// whose Data then names the file. Restore installs the file (delete the
// range, write the keys in batches, the applied index in the last one) and
// removes it; a crash part way through is finished at restart from the
// file, which the WAL's snapshot names. Spool files nothing refers to
// (refused streams, snapshots raft ignored) are swept at startup, shard by
// shard before the shard's group runs.

// inlineSnapshotLimit bounds an inline shard snapshot: half a peer frame
// (transport.DefaultMaxMessageSize), leaving room for the frame's other
// messages.
const inlineSnapshotLimit = int(transport.DefaultMaxMessageSize / 2)

// spoolSuffix ends the names of spooled shard snapshots.
const spoolSuffix = ".spool"

// errSnapshotTooLarge: the shard's snapshot exceeds the inline bound.
var errSnapshotTooLarge = errors.New("kvservice: shard snapshot larger than the inline bound")

// snapshotLimit is the largest inline snapshot, in bytes.
func (s *ShardedServer) snapshotLimit() int {
	if h := s.cfg.hooks; h != nil && h.snapshotLimit > 0 {
		return h.snapshotLimit
	}
	return inlineSnapshotLimit
}

// takeSnapshot returns the Data of a raft snapshot of the shard at
// applied: inline if the shard fits the bound, else a descriptor. The
// caller holds the shard (its worker), so the store has it exactly as of
// applied.
func (s *ShardedServer) takeSnapshot(r *shardRep, applied, keys uint64) ([]byte, error) {
	limit := s.snapshotLimit()
	lo, hi := r.sh.dataSpan()
	size, err := s.store.db.EstimateDiskUsage(lo, hi)
	if err != nil {
		return nil, err
	}
	// The estimate is of compressed blocks: a shard under it may still
	// be over the bound; measuring it first (reading at most limit bytes,
	// keeping none) spares a large shard the buffer.
	if size <= uint64(limit) {
		err := r.writeSnapshot(applied, keys, &boundedBuffer{limit: limit, discard: true})
		if err == nil {
			return r.encodeSnapshot(applied, keys, limit)
		}
		if !errors.Is(err, errSnapshotTooLarge) {
			return nil, err
		}
	}
	return snapDescriptor{Format: storeLayoutVersion, Group: r.sh.group, Applied: applied,
		Size: size, Source: s.cfg.ID}.marshal(), nil
}

// encodeSnapshot returns the shard's stream at applied, or
// errSnapshotTooLarge once it passes limit bytes.
func (r *shardRep) encodeSnapshot(applied, keys uint64, limit int) ([]byte, error) {
	buf := &boundedBuffer{limit: limit}
	if err := r.writeSnapshot(applied, keys, buf); err != nil {
		return nil, err
	}
	return buf.b, nil
}

// writeSnapshot writes the shard's stream at applied to w.
func (r *shardRep) writeSnapshot(applied, keys uint64, w io.Writer) error {
	h := &heldSnapshot{snap: r.sh.st.db.NewSnapshot(),
		hdr: snapHeader{Group: r.sh.group, Index: applied, Keys: keys, Config: r.cfg.clone()}}
	h.refs.Store(1)
	defer h.release()
	_, err := (&snapSource{h: h, sh: r.sh}).WriteTo(w)
	return err
}

// boundedBuffer collects (or, with discard, counts) writes up to limit
// bytes.
type boundedBuffer struct {
	b       []byte
	n       int
	limit   int
	discard bool
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		return 0, errSnapshotTooLarge
	}
	w.n += len(p)
	if !w.discard {
		w.b = append(w.b, p...)
	}
	return len(p), nil
}

// isInline reports whether a snapshot's Data is the shard itself.
func isInline(data []byte) bool { return bytes.HasPrefix(data, []byte(snapMagic)) }

// shardStreams is the ShardedServer's multiraft.SnapshotStreams.
type shardStreams struct{ s *ShardedServer }

var _ multiraft.SnapshotStreams = shardStreams{}

// OpenSnapshot streams the shard of m's snapshot: nothing for an inline
// one (its Data is the shard), else the shard read from a Pebble snapshot
// taken now.
func (ss shardStreams) OpenSnapshot(g multiraft.GroupID, m raftpb.Message) (multiraft.SnapshotSource, error) {
	r := ss.s.rep(g)
	if r == nil {
		return nil, fmt.Errorf("kvservice: snapshot of group %d, which is no shard here", g)
	}
	if isInline(m.Snapshot.Data) {
		return emptySource{}, nil
	}
	src, err := openShardSource(r.sh, m.Snapshot.Metadata.Index)
	if err != nil {
		ss.s.m.countStream(streamSendFailed)
		return nil, err
	}
	return &countedSource{snapSource: src, m: ss.s.m}, nil
}

// countedSource counts a stream as sent once its source wrote it whole
// (the receiver may still refuse it: that is counted there).
type countedSource struct {
	*snapSource
	m   *metrics
	err error
}

func (c *countedSource) WriteTo(w io.Writer) (int64, error) {
	n, err := c.snapSource.WriteTo(w)
	c.err = err
	return n, err
}

func (c *countedSource) Close() error {
	if c.err != nil {
		c.m.countStream(streamSendFailed)
	} else {
		c.m.countStream(streamSent)
	}
	return c.snapSource.Close()
}

// ReceiveSnapshot spools a streamed shard to a file; an inline one needs
// no data.
func (ss shardStreams) ReceiveSnapshot(g multiraft.GroupID, m raftpb.Message) (multiraft.SnapshotSink, error) {
	r := ss.s.rep(g)
	if r == nil {
		return nil, fmt.Errorf("kvservice: snapshot of group %d, which is no shard here", g)
	}
	if isInline(m.Snapshot.Data) {
		return inlineSink(m.Snapshot.Data), nil
	}
	if _, ok := decodeDescriptor(m.Snapshot.Data); !ok {
		ss.s.m.countStream(streamRefused)
		return nil, errors.New("kvservice: a shard snapshot that is neither inline nor a descriptor")
	}
	sink, err := newSpoolSink(ss.s.spoolDir(), r.sh.group, m.Snapshot.Metadata.Index, ss.s.m)
	if err != nil {
		ss.s.m.countStream(streamRefused)
	}
	return sink, err
}

var _ multiraft.SnapshotStreamObserver = shardStreams{}

// refusalsLogged: a follower's refusals in a row are logged at the
// refusalsLogged-th, then every refusalsLogEvery-th (each failure is
// logged by the transport too; this line says the follower keeps at it).
const (
	refusalsLogged   = 3
	refusalsLogEvery = 8
)

// SnapshotStreamFailed counts a stream the follower refused (the others
// are counted as send_failed by the source) and logs a follower that
// keeps refusing.
func (ss shardStreams) SnapshotStreamFailed(g multiraft.GroupID, to multiraft.HostID, err error, failures int, wait int64) {
	if !errors.Is(err, multiraft.ErrSnapshotRefused) {
		return
	}
	ss.s.m.countStream(streamPeerRefused)
	if failures == refusalsLogged || failures > refusalsLogged && (failures-refusalsLogged)%refusalsLogEvery == 0 {
		ss.s.lg.Warn("a member keeps refusing the shard's snapshot; backing off",
			zap.Uint64("group", uint64(g)), zap.Uint64("member", to), zap.Int("refusals_in_a_row", failures),
			zap.Int64("next_try_in_ticks", wait), zap.Error(err))
	}
}

// SnapshotStreamDeferred counts a snapshot the backoff failed without a
// stream.
func (ss shardStreams) SnapshotStreamDeferred(g multiraft.GroupID, to multiraft.HostID) {
	ss.s.m.countStream(streamDeferred)
}

// emptySource is the (empty) stream of an inline snapshot.
type emptySource struct{}

func (emptySource) WriteTo(io.Writer) (int64, error) { return 0, nil }
func (emptySource) Close() error                     { return nil }

// inlineSink takes the empty stream of an inline snapshot; its Data is
// the message's.
type inlineSink []byte

func (s inlineSink) Write(p []byte) (int, error) {
	return 0, errors.New("kvservice: data streamed with an inline snapshot")
}
func (s inlineSink) Commit() ([]byte, error) { return s, nil }
func (s inlineSink) Abort()                  {}

// openShardSource takes a Pebble snapshot of the store and returns the
// shard's stream from it, at the applied index the snapshot holds, which
// must be at least index (the raft snapshot's).
func openShardSource(sh shard, index uint64) (*snapSource, error) {
	snap := sh.st.db.NewSnapshot()
	meta, err := sh.loadFrom(snap)
	if err == nil && meta.applied < index {
		err = fmt.Errorf("kvservice: group %d: the store applied %d, below the snapshot's %d", sh.group, meta.applied, index)
	}
	if err != nil {
		snap.Close()
		return nil, err
	}
	h := &heldSnapshot{snap: snap, hdr: snapHeader{Group: sh.group, Index: index, Applied: meta.applied,
		Keys: meta.keys, Config: meta.cfg}}
	h.refs.Store(1)
	return &snapSource{h: h, sh: sh}, nil
}

// loadFrom reads the shard's meta keys from r, a Pebble snapshot.
func (sh shard) loadFrom(r pebble.Reader) (shardMeta, error) {
	m, err := sh.readMeta(r)
	if err != nil {
		return m, fmt.Errorf("kvservice: group %d: meta: %w", sh.group, err)
	}
	return m, nil
}

// spoolSink writes an incoming shard stream to a file in dir.
type spoolSink struct {
	f     *os.File
	group uint64
	m     *metrics
}

func newSpoolSink(dir string, group, index uint64, m *metrics) (*spoolSink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, fmt.Sprintf("%016x-%016x-*%s", group, index, spoolSuffix))
	if err != nil {
		return nil, err
	}
	return &spoolSink{f: f, group: group, m: m}, nil
}

func (s *spoolSink) Write(p []byte) (int, error) { return s.f.Write(p) }

// Commit makes the file durable (a descriptor will name it in the WAL)
// and returns the descriptor naming it. The stream was checked whole
// (length and CRC-32C) before; installing it checks its layout.
func (s *spoolSink) Commit() ([]byte, error) {
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(s.f.Name()))
	}
	if err != nil {
		return nil, err
	}
	s.m.countStream(streamReceived)
	return snapDescriptor{Format: storeLayoutVersion, Group: s.group, File: filepath.Base(s.f.Name())}.marshal(), nil
}

// Abort removes the file.
func (s *spoolSink) Abort() {
	s.m.countStream(streamRefused)
	_ = s.f.Close()
	_ = os.Remove(s.f.Name())
}

// spoolDir is where received shard streams are spooled.
func (s *ShardedServer) spoolDir() string { return filepath.Join(s.cfg.Dir, snapDirName) }

// sweepSpool removes the group's spooled streams. Called for a shard
// before its group runs, after its recovery installed what the WAL's
// snapshot names: any file left is a stream raft never took, or one
// whose install is done.
func (s *ShardedServer) sweepSpool(group uint64) { s.sweepSpoolUpTo(group, math.MaxUint64) }

// sweepSpoolUpTo removes the group's spooled streams of snapshots at or
// below index. Once the shard installed a snapshot at index, raft ignores
// any such snapshot (it is not past the commit index), so those files,
// and streams still arriving for them, are of no use; later ones stay.
func (s *ShardedServer) sweepSpoolUpTo(group, index uint64) {
	names, _ := filepath.Glob(filepath.Join(s.spoolDir(), fmt.Sprintf("%016x-*%s", group, spoolSuffix)))
	for _, name := range names {
		var g, i uint64
		if _, err := fmt.Sscanf(filepath.Base(name), "%016x-%016x-", &g, &i); err != nil || g != group || i > index {
			continue
		}
		if err := os.Remove(name); err != nil && !os.IsNotExist(err) {
			s.lg.Warn("removing a stale snapshot spool file", zap.String("file", name), zap.Error(err))
		}
	}
}

// installShard replaces the shard with a snapshot's state, inline or
// spooled, and returns the stream's header. A descriptor without a file
// is a snapshot this member took: the store already holds it.
func (s *ShardedServer) installShard(r *shardRep, snap raftpb.Snapshot) (snapHeader, error) {
	index := snap.Metadata.Index
	if h := s.cfg.hooks; h != nil && h.beforeInstall != nil {
		if err := h.beforeInstall(); err != nil {
			return snapHeader{}, err
		}
	}
	if isInline(snap.Data) {
		return r.sh.installStream(bufio.NewReader(bytes.NewReader(snap.Data)), index)
	}
	d, ok := decodeDescriptor(snap.Data)
	switch {
	case !ok || d.Group != r.sh.group:
		return snapHeader{}, fmt.Errorf("undecodable snapshot data of %d bytes", len(snap.Data))
	case d.File == "" || strings.ContainsAny(d.File, `/\`):
		return snapHeader{}, fmt.Errorf("the snapshot's state is not here (descriptor %+v)", d)
	}
	hdr, err := r.sh.installFile(filepath.Join(s.spoolDir(), d.File), index)
	if err == nil {
		s.sweepSpoolUpTo(r.sh.group, index)
	}
	return hdr, err
}
