package shared

import (
	"fmt"
	"os"
	"sort"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal"
)

// GroupUpdate is what one group's Ready (or MsgStorageAppend) asks to
// persist: the snapshot (if not empty) replaces the group's log, then the
// entries are appended (replacing any conflicting suffix), then the
// HardState (if not empty) is recorded.
type GroupUpdate struct {
	GroupID   uint64
	HardState pb.HardState
	Entries   []pb.Entry
	Snapshot  pb.Snapshot
}

// SaveBatch persists the updates of many groups with one write, and returns
// once they are durable if any of them must be (raft.MustSync for its
// group, or a snapshot install); a batch that only moves commit indexes is
// written but not waited for, like wal.Storage.Save. Concurrent calls share
// fsyncs (group commit).
//
// The batch is atomic across crashes: recovery finds all of it or none of
// it, for every group in it. Updates apply in order, so one group may
// appear more than once. An invalid update (unknown group, stale snapshot,
// entries that leave a gap) fails the whole batch before anything is
// written. Entries must not be modified afterwards: they are kept in the
// group's cache and handed to readers.
func (w *WAL) SaveBatch(updates []GroupUpdate) error {
	end, b, err := w.saveBatch(updates)
	if err != nil || b == nil {
		return err
	}
	return w.finish(end, b)
}

// finish waits for durability when b needs it, then deletes the snapshot
// files b made stale and the segments it freed.
func (w *WAL) finish(end uint64, b *batch) error {
	if b.mustSync {
		if err := w.waitDurable(end); err != nil {
			return err
		}
	}
	if len(b.staleSnaps) == 0 && !b.mayFree {
		return nil
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	w.removeSnapshotFiles(b.staleSnaps)
	if b.mayFree {
		return w.collect()
	}
	return nil
}

// planned is the running state of a group while a batch is planned, so
// that later updates of the same group are checked against earlier ones.
type planned struct {
	id                         uint64
	compacted, last, snapIndex uint64
	hs                         pb.HardState
	snap                       snapRef
}

func (w *WAL) saveBatch(updates []GroupUpdate) (uint64, *batch, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.writable(); err != nil {
		return 0, nil, err
	}
	b := w.newBatch()
	// abandon refuses the batch before anything of it is in the log, so
	// nothing refers to the snapshot files written for it. (After a failed
	// write they stay: the write may have reached the disk whole.)
	abandon := func(err error) (uint64, *batch, error) {
		for _, n := range b.newSnaps {
			os.Remove(snapPath(w.dir, n))
		}
		return 0, nil, err
	}
	w.batchSeq++
	plans := w.plans[:0]
	defer func() {
		if cap(plans) <= maxScratch {
			clear(plans)
			w.plans = plans[:0]
		}
	}()
	for k := range updates {
		u := &updates[k]
		g := w.groups[u.GroupID]
		if g == nil {
			return abandon(fmt.Errorf("%w: %d", ErrNoGroup, u.GroupID))
		}
		var p *planned
		if g.plannedIn == w.batchSeq {
			// Seen earlier in this batch (rare): continue from there.
			for j := len(plans) - 1; p == nil; j-- {
				if plans[j].id == u.GroupID {
					p = &plans[j]
				}
			}
		} else {
			g.plannedIn = w.batchSeq
			plans = append(plans, planned{id: u.GroupID, compacted: g.compactIndex, last: g.lastIndex,
				snapIndex: g.snap.meta.Index, hs: g.hardState, snap: g.snap})
			p = &plans[len(plans)-1]
		}
		if err := w.plan(b, u, p); err != nil {
			return abandon(err)
		}
	}
	if len(b.ops) == 0 {
		return 0, nil, nil
	}
	end, err := w.commit(b)
	return end, b, err
}

// plan adds u's records to b, checked against p, and advances p.
func (w *WAL) plan(b *batch, u *GroupUpdate, p *planned) error {
	install := !raft.IsEmptySnap(u.Snapshot)
	if install && u.Snapshot.Metadata.Index <= p.snapIndex {
		return fmt.Errorf("group %d: %w", u.GroupID, raft.ErrSnapOutOfDate)
	}
	compacted, last := p.compacted, p.last
	if install {
		compacted, last = u.Snapshot.Metadata.Index, u.Snapshot.Metadata.Index
	}
	ents, err := liveSuffix(u.Entries, compacted, last)
	if err != nil {
		return fmt.Errorf("group %d: %w", u.GroupID, err)
	}
	hsChanged := !raft.IsEmptyHardState(u.HardState) && u.HardState != p.hs
	if !install && len(ents) == 0 && !hsChanged {
		return nil
	}
	b.beginItem(u.GroupID)
	if install {
		ref, err := writeSnapshotFile(w.dir, u.GroupID, &u.Snapshot, w.sync)
		if err != nil {
			return err
		}
		b.newSnaps = append(b.newSnaps, snapNameOf(u.GroupID, ref.meta))
		if !p.snap.empty() {
			b.staleSnaps = append(b.staleSnaps, snapNameOf(u.GroupID, p.snap.meta))
		}
		b.add(op{typ: recSnapshot, group: u.GroupID, install: true, snap: &ref}, nil)
		p.snapIndex, p.snap = ref.meta.Index, ref
		b.mustSync = true
	}
	for k := range ents {
		b.add(op{typ: recEntry, group: u.GroupID, index: ents[k].Index, term: ents[k].Term}, &ents[k])
	}
	b.items[len(b.items)-1].ents = ents
	if hsChanged {
		b.add(op{typ: recHardState, group: u.GroupID, hs: u.HardState}, nil)
		b.mustSync = b.mustSync || raft.MustSync(u.HardState, p.hs, len(ents))
		p.hs = u.HardState
	}
	b.mustSync = b.mustSync || len(ents) > 0
	p.compacted = compacted
	if len(ents) > 0 {
		last = ents[len(ents)-1].Index
	}
	p.last = last
	return nil
}

// liveSuffix checks entries for an append and drops those at or below the
// compaction point.
func liveSuffix(ents []pb.Entry, compacted, last uint64) ([]pb.Entry, error) {
	for k := 1; k < len(ents); k++ {
		if ents[k].Index != ents[k-1].Index+1 {
			return nil, fmt.Errorf("entries are not contiguous: index %d follows %d", ents[k].Index, ents[k-1].Index)
		}
	}
	if len(ents) == 0 || ents[len(ents)-1].Index <= compacted {
		return nil, nil
	}
	if ents[0].Index <= compacted {
		ents = ents[compacted+1-ents[0].Index:]
	}
	if ents[0].Index > last+1 {
		return nil, fmt.Errorf("entries start at index %d, leaving a gap after the last index %d", ents[0].Index, last)
	}
	return ents, nil
}

// batch collects the framed records of one write, the ops they stand for
// (offsets relative to the batch until commit places it) and, per group
// update, what to publish to the group's cache.
type batch struct {
	buf        []byte
	ops        []op
	items      []batchItem
	mustSync   bool       // some update must be durable before returning
	mayFree    bool       // no group holds the oldest segment any more
	staleSnaps []snapName // snapshot files to delete once the batch is durable
	newSnaps   []snapName // snapshot files written for the batch
}

// batchItem is one group's share of a batch: ops[from:to], and the entries
// to add to its cache.
type batchItem struct {
	group    uint64
	from, to int
	ents     []pb.Entry
}

// newBatch starts a batch in the WAL's scratch space; commit gives it back.
// Callers hold wmu.
func (w *WAL) newBatch() *batch {
	return &batch{buf: w.buf[:0], ops: w.ops[:0], items: w.items[:0]}
}

// maxScratch bounds the elements of a scratch slice kept between batches:
// enough for the batches of a busy host, while a batch across 10,000
// groups allocates its own rather than leave megabytes behind.
const maxScratch = 2048

// recycle keeps b's grown buffers for the next batch, within reason, and
// drops its references to entries and snapshots. Callers hold wmu.
func (w *WAL) recycle(b *batch) {
	if cap(b.buf) <= 1<<20 {
		w.buf = b.buf[:0]
	}
	if cap(b.ops) <= maxScratch {
		clear(b.ops)
		w.ops = b.ops[:0]
	}
	if cap(b.items) <= maxScratch {
		clear(b.items)
		w.items = b.items[:0]
	}
	b.ops, b.items = nil, nil
}

func (b *batch) beginItem(group uint64) {
	b.items = append(b.items, batchItem{group: group, from: len(b.ops), to: len(b.ops)})
}

// add frames o's record (with e's data for an entry) into the current item.
func (b *batch) add(o op, e *pb.Entry) {
	o.off = int64(len(b.buf))
	b.buf = appendOp(b.buf, &o, e)
	b.ops = append(b.ops, o)
	b.items[len(b.items)-1].to = len(b.ops)
}

// commit writes b at the end of the active segment (after starting a new
// one if b would overflow it), then applies it to the in-memory state. It
// returns the write's end position for waitDurable. Callers hold wmu.
func (w *WAL) commit(b *batch) (uint64, error) {
	if len(b.buf)+batchEndSize > maxBatch {
		return 0, fmt.Errorf("shared wal: batch of %d bytes exceeds the limit of %d", len(b.buf), maxBatch)
	}
	sg := w.active()
	rotated := false
	// The header (a checkpoint per group) does not count against the
	// segment size, or a WAL of many groups would rotate at every batch.
	if sg.size > sg.dataStart && (sg.size-sg.dataStart+int64(len(b.buf)+batchEndSize) > w.opts.SegmentSize || w.rotateEarly(sg)) {
		if err := w.rotate(); err != nil {
			return 0, err
		}
		sg, rotated = w.active(), true
	}
	start := sg.size
	b.buf = appendFrame(b.buf, recBatchEnd, appendBatchEnd(nil, batchEndRecord{start: start, count: uint32(len(b.ops))}))
	if _, err := sg.f.WriteAt(b.buf, start); err != nil {
		return 0, w.fail(fmt.Errorf("shared wal: writing %s: %w", sg.path, err))
	}
	w.mu.Lock()
	for k := range b.items {
		w.publish(&b.items[k], b.ops, start, uint32(sg.seq))
	}
	b.mayFree = b.mayFree || (len(w.segs) > 1 && w.pins[uint32(w.segs[0].seq)] == 0)
	sg.size += int64(len(b.buf))
	if w.cacheBytes > w.opts.CacheSize {
		w.evictCaches()
	}
	w.mu.Unlock()
	w.askSpare(sg)
	w.stats.batches.Add(1)
	w.stats.bytes.Add(uint64(len(b.buf)))
	w.recycle(b)
	w.smu.Lock()
	w.wrote += uint64(len(b.buf))
	end := w.wrote
	w.smu.Unlock()
	if rotated && len(w.segs) > w.opts.MaxSegments && !w.relocating {
		if err := w.relocateOldest(); err != nil {
			return 0, err
		}
	}
	return end, nil
}

// publish applies one item's ops, caches its entries and keeps the pin
// counts. Callers hold wmu and mu.
func (w *WAL) publish(it *batchItem, ops []op, start int64, seq uint32) {
	g := w.groups[it.group]
	var before int64
	var pinned uint32
	if g != nil {
		before, pinned = g.cache.bytes, g.firstSeg()
	}
	for k := it.from; k < it.to; k++ {
		o := &ops[k]
		o.off += start
		g = w.groups.apply(o, seq)
	}
	now := uint32(0)
	if g.removed {
		w.cacheBytes -= before
	} else {
		g.publishBounds()
		if w.opts.GroupCacheSize > 0 {
			g.cache.add(it.ents, w.opts.GroupCacheSize)
		}
		w.cacheBytes += g.cache.bytes - before
		now = g.firstSeg()
	}
	if now != pinned {
		w.pin(pinned, -1)
		w.pin(now, +1)
	}
}

// pin counts a group whose oldest live entry is in segment seq (0: none).
func (w *WAL) pin(seq uint32, n int) {
	if seq == 0 {
		return
	}
	if w.pins[seq] += n; w.pins[seq] == 0 {
		delete(w.pins, seq)
	}
}

// evictCaches drops whole group caches until a quarter of the budget is
// free. Map order picks the victims, which spreads the loss. Callers hold
// mu.
func (w *WAL) evictCaches() {
	for _, g := range w.groups {
		if w.cacheBytes <= w.opts.CacheSize*3/4 {
			return
		}
		w.cacheBytes -= g.cache.bytes
		g.cache.reset()
	}
}

// rotate seals the active segment and starts the next one, whose header
// records the checkpoint of every group. Callers hold wmu.
func (w *WAL) rotate() error {
	old := w.active()
	if err := old.seal(w.sync); err != nil {
		return w.fail(err)
	}
	w.stats.fsyncs.Add(1)
	sg, err := w.newSegment(old.seq+1, w.headerRecord(old.seq+1))
	if err != nil {
		return w.fail(err)
	}
	w.mu.Lock()
	w.segs = append(w.segs, sg)
	w.mu.Unlock()
	w.smu.Lock()
	w.synced = w.wrote // sealing synced all of it
	w.syncFile = sg.f
	w.scond.Broadcast()
	w.smu.Unlock()
	return nil
}

// headerRecord frames the header of segment seq: the checkpoint of every
// live group, in ID order. Callers hold wmu.
func (w *WAL) headerRecord(seq uint64) []byte {
	h := segmentHeader{seq: seq, groups: make([]groupCheckpoint, 0, len(w.groups))}
	for _, g := range w.groups {
		h.groups = append(h.groups, g.checkpoint())
	}
	sort.Slice(h.groups, func(a, b int) bool { return h.groups[a].id < h.groups[b].id })
	return appendFrame(nil, recSegmentHeader, appendSegmentHeader(nil, &h))
}

// Sync waits until everything written so far is durable.
func (w *WAL) Sync() error {
	w.smu.Lock()
	end := w.wrote
	w.smu.Unlock()
	return w.waitDurable(end)
}

// waitDurable returns once the first end bytes written are durable.
//
// Group commit: one waiter at a time becomes the syncer; it takes the
// amount written so far as its target, fsyncs, and wakes everyone. Writers
// that wrote while that fsync ran wait for it, then one of them syncs for
// all of them: n concurrent writers cost about two fsyncs, not n.
func (w *WAL) waitDurable(end uint64) error {
	if w.sync.off {
		return w.failure()
	}
	w.smu.Lock()
	defer w.smu.Unlock()
	for w.synced < end {
		if w.failed != nil {
			return w.failed
		}
		if w.syncing {
			w.scond.Wait()
			continue
		}
		w.syncing = true
		f, target := w.syncFile, w.wrote
		w.smu.Unlock()
		if w.beforeSync != nil {
			w.beforeSync()
		}
		err := wal.SyncData(f)
		w.stats.fsyncs.Add(1)
		w.smu.Lock()
		w.syncing = false
		if err != nil && w.failed == nil {
			w.failed = fmt.Errorf("shared wal: syncing: %w", err)
		}
		if err == nil {
			w.synced = max(w.synced, target)
		}
		w.scond.Broadcast()
	}
	return nil
}

// syncAll makes everything written durable and waits out any fsync in
// progress, so that files may then be closed or deleted. Callers hold wmu.
func (w *WAL) syncAll() error {
	w.smu.Lock()
	target, f := w.wrote, w.syncFile
	w.smu.Unlock()
	if !w.sync.off {
		if err := w.sync.data(f); err != nil {
			return w.fail(fmt.Errorf("shared wal: syncing: %w", err))
		}
		w.stats.fsyncs.Add(1)
	}
	w.smu.Lock()
	w.synced = max(w.synced, target)
	w.scond.Broadcast()
	for w.syncing {
		w.scond.Wait()
	}
	w.smu.Unlock()
	return nil
}

// AppendUpdate turns a MsgStorageAppend of group id (raft.Config's
// AsyncStorageWrites) into the update that persists it: its snapshot, its
// entries and the HardState carried in its Term, Vote and Commit (all zero
// when unchanged). Once the SaveBatch holding it returns, the message's
// Responses may be delivered.
func AppendUpdate(id uint64, m pb.Message) (GroupUpdate, error) {
	if m.Type != pb.MsgStorageAppend {
		return GroupUpdate{}, fmt.Errorf("shared wal: AppendUpdate got a %v message", m.Type)
	}
	u := GroupUpdate{GroupID: id, HardState: pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}, Entries: m.Entries}
	if m.Snapshot != nil {
		u.Snapshot = *m.Snapshot
	}
	return u, nil
}
