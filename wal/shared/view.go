package shared

import (
	"fmt"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// Group is one group's view of a WAL: a raft.Storage for its RawNode, plus
// the writes MemoryStorage offers, each a single-group batch. A view of a
// removed group returns ErrNoGroup from every method.
type Group struct {
	w *WAL
	g *groupState
}

var _ raft.Storage = (*Group)(nil)

// ID returns the group's ID.
func (v *Group) ID() uint64 { return v.g.id }

// readable checks, under w.mu (read), that the view may be read.
func (v *Group) readable() error {
	switch {
	case v.w.closed:
		return ErrClosed
	case v.g.removed:
		return fmt.Errorf("%w: %d", ErrNoGroup, v.g.id)
	}
	return nil
}

// InitialState implements raft.Storage.
func (v *Group) InitialState() (pb.HardState, pb.ConfState, error) {
	v.w.mu.RLock()
	defer v.w.mu.RUnlock()
	if err := v.readable(); err != nil {
		return pb.HardState{}, pb.ConfState{}, err
	}
	return v.g.hardState, v.g.snap.meta.ConfState, nil
}

// FirstIndex implements raft.Storage.
func (v *Group) FirstIndex() (uint64, error) {
	v.w.mu.RLock()
	defer v.w.mu.RUnlock()
	if err := v.readable(); err != nil {
		return 0, err
	}
	return v.g.compactIndex + 1, nil
}

var _ raft.StorageBounds = (*Group)(nil)

// LogBounds implements raft.StorageBounds: FirstIndex, LastIndex and the
// last entry's term as of one moment, without taking the WAL's lock, which
// every group's reads and the writer share. A view of a removed group, or
// of a closed WAL, keeps answering the last bounds.
func (v *Group) LogBounds() (first, last, lastTerm uint64) { return v.g.bounds.Load() }

// LastIndex implements raft.Storage.
func (v *Group) LastIndex() (uint64, error) {
	v.w.mu.RLock()
	defer v.w.mu.RUnlock()
	if err := v.readable(); err != nil {
		return 0, err
	}
	return v.g.lastIndex, nil
}

// Term implements raft.Storage.
func (v *Group) Term(i uint64) (uint64, error) {
	v.w.mu.RLock()
	defer v.w.mu.RUnlock()
	if err := v.readable(); err != nil {
		return 0, err
	}
	switch {
	case i < v.g.compactIndex:
		return 0, raft.ErrCompacted
	case i > v.g.lastIndex:
		return 0, raft.ErrUnavailable
	}
	return v.g.term(i), nil
}

// Entries implements raft.Storage. Cached entries come from memory, older
// ones from their segments (checksums verified again). A range past the
// last index returns ErrUnavailable rather than panicking.
func (v *Group) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	v.w.mu.RLock()
	defer v.w.mu.RUnlock()
	if err := v.readable(); err != nil {
		return nil, err
	}
	g := v.g
	switch {
	case lo <= g.compactIndex:
		return nil, raft.ErrCompacted
	case hi > g.lastIndex+1 || lo > hi:
		return nil, raft.ErrUnavailable
	case g.lastIndex == g.compactIndex:
		return nil, raft.ErrUnavailable
	}
	return v.w.readLive(g, lo, hi, maxSize)
}

// Snapshot implements raft.Storage: the latest snapshot, installed or
// created, read from its file (snapshot data is not kept in memory).
func (v *Group) Snapshot() (pb.Snapshot, error) {
	v.w.mu.RLock()
	defer v.w.mu.RUnlock()
	if err := v.readable(); err != nil {
		return pb.Snapshot{}, err
	}
	if v.g.snap.empty() {
		return pb.Snapshot{}, nil
	}
	return readSnapshotFile(v.w.dir, v.g.id, v.g.snap)
}

// Save persists one Ready of this group; see WAL.SaveBatch.
func (v *Group) Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error {
	return v.w.SaveBatch([]GroupUpdate{{GroupID: v.g.id, HardState: hs, Entries: ents, Snapshot: snap}})
}

// Append appends entries durably, replacing any at the same or later
// indexes; entries at or below the compaction point are ignored.
func (v *Group) Append(ents []pb.Entry) error {
	return v.Save(pb.HardState{}, ents, pb.Snapshot{})
}

// SetHardState records hs, durably when the term or vote changed.
func (v *Group) SetHardState(hs pb.HardState) error {
	return v.Save(hs, nil, pb.Snapshot{})
}

// ApplySnapshot replaces the group's log by snap, as
// MemoryStorage.ApplySnapshot does; a snapshot not newer than the current
// one is refused with raft.ErrSnapOutOfDate.
func (v *Group) ApplySnapshot(snap pb.Snapshot) error {
	if raft.IsEmptySnap(snap) {
		return raft.ErrSnapOutOfDate
	}
	return v.Save(pb.HardState{}, nil, snap)
}

// Compact discards the entries up to and including index. Compacting at or
// below the current point returns raft.ErrCompacted; past the last index,
// an error. The compaction is not waited for (losing it in a crash only
// keeps entries longer); segments it frees are deleted once it is durable.
func (v *Group) Compact(index uint64) error {
	w := v.w
	w.wmu.Lock()
	if err := v.writable(); err != nil {
		w.wmu.Unlock()
		return err
	}
	g := v.g
	switch {
	case index <= g.compactIndex:
		w.wmu.Unlock()
		return raft.ErrCompacted
	case index > g.lastIndex:
		w.wmu.Unlock()
		return fmt.Errorf("shared wal: group %d: compact index %d is past the last index %d", g.id, index, g.lastIndex)
	}
	b := w.newBatch()
	b.beginItem(g.id)
	b.add(op{typ: recCompact, group: g.id, index: index, term: g.term(index)}, nil)
	end, err := w.commit(b)
	w.wmu.Unlock()
	if err != nil {
		return err
	}
	return w.finish(end, b)
}

// CreateSnapshot records a snapshot of the group's state machine as of
// entry i, like MemoryStorage.CreateSnapshot (cs replaces the ConfState
// unless nil), and returns once it is durable. The log is not compacted.
func (v *Group) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error) {
	w := v.w
	w.wmu.Lock()
	snap, end, b, err := v.createSnapshot(i, cs, data)
	w.wmu.Unlock()
	if err != nil {
		return pb.Snapshot{}, err
	}
	return snap, w.finish(end, b)
}

func (v *Group) createSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, uint64, *batch, error) {
	if err := v.writable(); err != nil {
		return pb.Snapshot{}, 0, nil, err
	}
	g := v.g
	switch {
	case i <= g.snap.meta.Index:
		return pb.Snapshot{}, 0, nil, raft.ErrSnapOutOfDate
	case i < g.compactIndex:
		return pb.Snapshot{}, 0, nil, raft.ErrCompacted
	case i > g.lastIndex:
		return pb.Snapshot{}, 0, nil, fmt.Errorf("shared wal: group %d: snapshot index %d is past the last index %d", g.id, i, g.lastIndex)
	}
	snap := pb.Snapshot{Data: data, Metadata: pb.SnapshotMetadata{Index: i, Term: g.term(i), ConfState: g.snap.meta.ConfState}}
	if cs != nil {
		snap.Metadata.ConfState = *cs
	}
	ref, err := writeSnapshotFile(v.w.dir, g.id, &snap, v.w.sync)
	if err != nil {
		return pb.Snapshot{}, 0, nil, err
	}
	b := v.w.newBatch()
	b.beginItem(g.id)
	b.add(op{typ: recSnapshot, group: g.id, snap: &ref}, nil)
	b.mustSync = true
	if !g.snap.empty() {
		b.staleSnaps = append(b.staleSnaps, snapNameOf(g.id, g.snap.meta))
	}
	end, err := v.w.commit(b)
	return snap, end, b, err
}

// writable checks, under w.wmu, that the group may be written.
func (v *Group) writable() error {
	if err := v.w.writable(); err != nil {
		return err
	}
	if v.g.removed {
		return fmt.Errorf("%w: %d", ErrNoGroup, v.g.id)
	}
	return nil
}
