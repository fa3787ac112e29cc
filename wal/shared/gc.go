package shared

import (
	"errors"
	"fmt"
	"os"

	pb "github.com/raftkit/raft/raftpb"
)

// relocateMaxEntries bounds the live log of a group that relocation
// rewrites: a group that keeps more uncompacted entries than this holds its
// oldest segment until it compacts, rather than being copied over and over.
const relocateMaxEntries = 4096

// CreateGroup creates an empty group (no entries, empty HardState, no
// snapshot) and returns its view; see CreateGroups.
func (w *WAL) CreateGroup(id uint64) (*Group, error) {
	if err := w.CreateGroups(id); err != nil {
		return nil, err
	}
	return w.Group(id)
}

// OpenGroup returns the view of group id, creating the group (empty) if it
// does not exist: the call a host makes when it starts a
// replica, whether the replica is new or recovered.
func (w *WAL) OpenGroup(id uint64) (*Group, error) {
	if v, err := w.Group(id); err == nil || !errors.Is(err, ErrNoGroup) {
		return v, err
	}
	if err := w.CreateGroups(id); err != nil && !errors.Is(err, ErrGroupExists) {
		return nil, err
	}
	return w.Group(id)
}

// CreateGroups creates empty groups in one batch: all of them or, if one
// exists already (ErrGroupExists), none. It does not wait for an fsync: an
// empty group holds nothing to lose, and the creation becomes durable with
// the next synced batch (recovery keeps a prefix of the batches), so a
// host starting thousands of groups does not pay an fsync for each. After
// a crash before then, the group is missing, and OpenGroup creates it
// again, empty, as it was.
func (w *WAL) CreateGroups(ids ...uint64) error {
	w.wmu.Lock()
	if err := w.writable(); err != nil {
		w.wmu.Unlock()
		return err
	}
	b := w.newBatch()
	seen := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		if w.groups[id] != nil || seen[id] {
			w.wmu.Unlock()
			return fmt.Errorf("%w: %d", ErrGroupExists, id)
		}
		seen[id] = true
		b.beginItem(id)
		b.add(op{typ: recCreate, group: id}, nil)
	}
	if len(ids) == 0 {
		w.wmu.Unlock()
		return nil
	}
	_, err := w.commit(b)
	w.wmu.Unlock()
	return err
}

// RemoveGroup removes a group with its log, HardState and snapshot, and
// returns once the removal is durable. Its snapshot file is deleted at
// once; the segment space its entries took is freed as soon as no other
// live group needs those segments (see the package documentation).
func (w *WAL) RemoveGroup(id uint64) error {
	w.wmu.Lock()
	if err := w.writable(); err != nil {
		w.wmu.Unlock()
		return err
	}
	g := w.groups[id]
	if g == nil {
		w.wmu.Unlock()
		return fmt.Errorf("%w: %d", ErrNoGroup, id)
	}
	b := w.newBatch()
	b.beginItem(id)
	b.add(op{typ: recRemove, group: id}, nil)
	b.mustSync = true
	if !g.snap.empty() {
		b.staleSnaps = append(b.staleSnaps, snapNameOf(id, g.snap.meta))
	}
	end, err := w.commit(b)
	w.wmu.Unlock()
	if err != nil {
		return err
	}
	return w.finish(end, b)
}

// removeSnapshotFiles deletes snapshot files no group refers to any more.
// Readers load a snapshot file while holding mu (read), having taken its
// name from the state under the same hold; taking mu once here waits for
// any reader of an old name to finish. Callers hold wmu. A file that
// cannot be removed is left for the next recovery, which deletes every
// file the log does not refer to.
func (w *WAL) removeSnapshotFiles(names []snapName) {
	if len(names) == 0 {
		return
	}
	w.mu.Lock()
	//lint:ignore SA2001 the critical section is the barrier
	w.mu.Unlock()
	for _, n := range names {
		// A group removed and created again may have reached the same
		// term and index since: its file is not stale.
		if g := w.groups[n.group]; g != nil && !g.snap.empty() && snapNameOf(g.id, g.snap.meta) == n {
			continue
		}
		os.Remove(snapPath(w.dir, n))
	}
}

// collect deletes the segments that hold no live entry of any group, oldest
// first, after making the records that made them dead durable: a segment
// deleted before the compaction (or removal, or relocation) that freed it
// reached the disk would leave recovery with entries it cannot find.
// Callers hold wmu.
func (w *WAL) collect() error {
	keep := w.segs[0].seq
	for keep < w.active().seq && w.pins[uint32(keep)] == 0 {
		keep++
	}
	if w.segs[0].seq == keep {
		return nil
	}
	if err := w.syncAll(); err != nil {
		return err
	}
	w.mu.Lock()
	k := keep - w.segs[0].seq
	victims := w.segs[:k]
	w.segs = append([]*segment(nil), w.segs[k:]...)
	w.mu.Unlock()
	// Oldest first: a crash part way leaves a suffix of the segments, and
	// any suffix that holds the live entries is a valid log. One may be
	// renamed to become the next spare instead (spare.go): to recovery, a
	// temporary file, so the same as deleted.
	for _, sg := range victims {
		if w.recycleSegment(sg) {
			continue
		}
		sg.f.Close()
		if err := os.Remove(sg.path); err != nil {
			return w.fail(fmt.Errorf("shared wal: removing segment: %w", err))
		}
	}
	return nil
}

// relocateOldest frees the oldest segment when there are more than
// MaxSegments: every group that still has live entries there (no more than
// relocateMaxEntries of them, within a quarter of SegmentSize) gets its
// whole live log appended again, one batch per group, which makes the old
// records dead; then the segments nothing holds are deleted. A group that
// cannot be moved keeps its segments. Only I/O failures, which stop the
// WAL, are returned: the batch that triggered the relocation is written
// already and must not be reported as failed for less. Callers hold wmu.
func (w *WAL) relocateOldest() error {
	w.relocating = true
	defer func() { w.relocating = false }()
	oldest := uint32(w.segs[0].seq)
	var pinned []*groupState
	for _, g := range w.groups {
		if g.firstSeg() == oldest && g.lastIndex-g.compactIndex <= relocateMaxEntries {
			pinned = append(pinned, g)
		}
	}
	for _, g := range pinned {
		w.relocate(g)
		if err := w.failure(); err != nil {
			return err
		}
	}
	if err := w.collect(); err != nil && w.failure() != nil {
		return err
	}
	return nil
}

// relocate appends g's live entries again, if they are not too big.
// Rewriting entries with the same indexes and terms leaves the log as it
// was, now located in the active segment. Callers hold wmu (so the state
// cannot change under the read).
func (w *WAL) relocate(g *groupState) {
	ents, err := w.readLive(g, g.compactIndex+1, g.lastIndex+1, uint64(w.opts.SegmentSize/4))
	if err != nil || uint64(len(ents)) != g.lastIndex-g.compactIndex {
		return // unreadable (reported when raft reads it) or too big
	}
	b := w.newBatch()
	b.beginItem(g.id)
	for k := range ents {
		b.add(op{typ: recEntry, group: g.id, index: ents[k].Index, term: ents[k].Term}, &ents[k])
	}
	b.items[0].ents = ents
	if _, err := w.commit(b); err == nil {
		w.stats.relocated.Add(uint64(len(ents)))
	}
}

const noLimit = ^uint64(0)

// readLive returns live entries [lo, hi) of g, within maxSize as
// raft.Storage.Entries counts it: from the cache when they are there, else
// from their segments, their checksums verified again. Callers hold mu
// (read) or wmu.
func (w *WAL) readLive(g *groupState, lo, hi, maxSize uint64) ([]pb.Entry, error) {
	cacheFirst := g.cache.firstIndex(g.lastIndex)
	lim := sizeLimit{max: maxSize}
	if lo >= cacheFirst {
		ents := g.cache.slice(lo, hi)
		n := lim.fitting(ents)
		return ents[:n:n], nil
	}
	var out []pb.Entry
	for i := lo; i < min(hi, cacheFirst); i++ {
		e, err := w.readEntry(g, i)
		if err != nil {
			return nil, err
		}
		if !lim.take(&e) {
			return out, nil
		}
		out = append(out, e)
	}
	if hi > cacheFirst {
		for _, e := range g.cache.slice(cacheFirst, hi) {
			if !lim.take(&e) {
				break
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// readEntry reads live entry i of g from its segment.
func (w *WAL) readEntry(g *groupState, i uint64) (pb.Entry, error) {
	loc := g.loc(i)
	sg := w.segment(loc.seg)
	typ, payload, err := sg.readRecord(int64(loc.off))
	if err != nil {
		return pb.Entry{}, err
	}
	group, e, err := decodeEntry(payload)
	if err == nil && (typ != recEntry || group != g.id || e.Index != i) {
		err = fmt.Errorf("found %v record of group %d index %d where entry %d of group %d should be", typ, group, e.Index, i, g.id)
	}
	if err != nil {
		return pb.Entry{}, &CorruptionError{File: sg.path, Offset: int64(loc.off), Reason: err.Error()}
	}
	return e, nil
}

// sizeLimit applies the raft.Storage rule for maxSize: the longest prefix
// within maxSize bytes of encoding, but at least one entry.
type sizeLimit struct {
	max, used uint64
	n         int
	full      bool
}

func (l *sizeLimit) take(e *pb.Entry) bool {
	if l.full {
		return false
	}
	size := uint64(e.Size())
	if l.n > 0 && l.used+size > l.max {
		l.full = true
		return false
	}
	l.used += size
	l.n++
	return true
}

func (l *sizeLimit) fitting(ents []pb.Entry) int {
	for k := range ents {
		if !l.take(&ents[k]) {
			return k
		}
	}
	return len(ents)
}
