package shared

import (
	"fmt"
	"sort"

	"github.com/raftkit/raft/internal/logbounds"
	pb "github.com/raftkit/raft/raftpb"
)

// entryLoc says where an entry's record is: segment sequence number and
// offset in it. Eight bytes per live entry is the whole disk index; entries
// of many groups interleave in a segment, so a sparse index (as package wal
// keeps for its single log) would have to scan other groups' records.
type entryLoc struct{ seg, off uint32 }

// termRun says that entries from index first on have term term, up to the
// next termRun.
type termRun struct{ first, term uint64 }

// groupState is one group's log as this WAL knows it: positions, terms and
// the HardState, rebuilt by recovery from the records and kept up to date by
// the write path applying the same records. Entry payloads live on disk and,
// for the newest entries, in cache.
//
// Invariants:
//  1. compactIndex <= lastIndex; entries (compactIndex, lastIndex] are live.
//  2. locs holds the locations of entries [lastIndex+1-len(locs), lastIndex];
//     live entries below that are phantom: known from a segment header's
//     checkpoint, their records in deleted segments. Only recovery sees
//     phantoms, and none is live when it ends.
//  3. terms[0].first <= compactIndex and terms covers up to lastIndex.
//  4. cache is empty or a contiguous suffix of the live log.
type groupState struct {
	id                        uint64
	compactIndex, compactTerm uint64
	lastIndex                 uint64
	hardState                 pb.HardState
	snap                      snapRef

	locs  []entryLoc
	terms []termRun
	cache entryCache
	// removed is set when the group is removed, for views still holding it.
	removed bool
	// plannedIn is the last batch SaveBatch planned this group in, to find
	// a group updated twice in one batch without a map per batch.
	plannedIn uint64
	// bounds mirrors compactIndex+1, lastIndex and the last entry's term
	// for Group.LogBounds. It is republished (publishBounds) under the
	// WAL's write lock after every change to the group's log: by
	// WAL.publish for the writes, by recover once replay is done.
	bounds logbounds.Bounds
}

// publishBounds stores the log's current bounds for Group.LogBounds.
// Callers hold the WAL's mu for writing (or own the WAL, as Open does).
func (g *groupState) publishBounds() {
	g.bounds.Store(g.compactIndex+1, g.lastIndex, g.term(g.lastIndex))
}

func newGroupState(id uint64) *groupState {
	return &groupState{id: id, terms: []termRun{{0, 0}}}
}

// fromCheckpoint is the state a segment header describes: entries up to its
// last index are phantom until replay locates or drops them.
func fromCheckpoint(c *groupCheckpoint) *groupState {
	return &groupState{
		id:           c.id,
		compactIndex: c.compactIndex,
		compactTerm:  c.compactTerm,
		lastIndex:    c.lastIndex,
		hardState:    c.hardState,
		snap:         c.snap,
		terms:        []termRun{{c.compactIndex, c.compactTerm}},
	}
}

func (g *groupState) checkpoint() groupCheckpoint {
	return groupCheckpoint{
		id:           g.id,
		compactIndex: g.compactIndex,
		compactTerm:  g.compactTerm,
		lastIndex:    g.lastIndex,
		hardState:    g.hardState,
		snap:         g.snap,
	}
}

// locFirst is the first entry whose location is known.
func (g *groupState) locFirst() uint64 { return g.lastIndex + 1 - uint64(len(g.locs)) }

// term returns the term of entry i in [compactIndex, lastIndex].
func (g *groupState) term(i uint64) uint64 {
	k := sort.Search(len(g.terms), func(k int) bool { return g.terms[k].first > i }) - 1
	if k < 0 || i < g.compactIndex || i > g.lastIndex {
		panic(fmt.Sprintf("shared wal: group %d: term of %d asked outside [%d, %d]", g.id, i, g.compactIndex, g.lastIndex))
	}
	return g.terms[k].term
}

// appendEntry records entry (index, term) at loc, truncating any
// conflicting suffix first. The caller checked index <= lastIndex+1;
// entries at or below the compaction point are ignored, as MemoryStorage
// ignores them.
func (g *groupState) appendEntry(index, term uint64, loc entryLoc) {
	if index <= g.compactIndex {
		return
	}
	if index <= g.lastIndex {
		g.truncate(index - 1)
	}
	// After phantom entries the last term is unknown: start a run.
	phantomLast := g.lastIndex > g.compactIndex && len(g.locs) == 0
	if n := len(g.terms); g.terms[n-1].term != term || phantomLast {
		g.terms = append(g.terms, termRun{index, term})
	}
	g.locs = append(g.locs, loc)
	g.lastIndex = index
}

// truncate drops the entries after i (i >= compactIndex).
func (g *groupState) truncate(i uint64) {
	drop := min(g.lastIndex-i, uint64(len(g.locs)))
	g.locs = g.locs[:uint64(len(g.locs))-drop]
	t := len(g.terms)
	for t > 1 && g.terms[t-1].first > i {
		t--
	}
	g.terms = g.terms[:t]
	g.lastIndex = i
}

// compact moves the compaction point to (index, term), index in
// (compactIndex, lastIndex].
func (g *groupState) compact(index, term uint64) {
	if first := g.locFirst(); index >= first {
		g.locs = g.locs[index-first+1:]
		if cap(g.locs) > 64 && cap(g.locs) > 4*len(g.locs) {
			// Let the dead prefix go: an idle group keeps little.
			g.locs = append([]entryLoc(nil), g.locs...)
		}
	}
	t := max(sort.Search(len(g.terms), func(t int) bool { return g.terms[t].first > index })-1, 0)
	g.terms = g.terms[t:]
	g.terms[0] = termRun{index, term}
	g.compactIndex, g.compactTerm = index, term
	g.cache.compact(index)
}

// install replaces the whole log by a snapshot.
func (g *groupState) install(ref snapRef) {
	g.compactIndex, g.compactTerm = ref.meta.Index, ref.meta.Term
	g.lastIndex = ref.meta.Index
	g.locs = nil
	g.terms = []termRun{{ref.meta.Index, ref.meta.Term}}
	g.snap = ref
	g.cache.reset()
}

// firstSeg is the segment of the oldest live entry, 0 when none is live.
func (g *groupState) firstSeg() uint32 {
	if len(g.locs) == 0 {
		return 0
	}
	return g.locs[0].seg
}

// loc returns the location of live entry i.
func (g *groupState) loc(i uint64) entryLoc {
	first := g.locFirst()
	if i < first || i > g.lastIndex || i <= g.compactIndex {
		panic(fmt.Sprintf("shared wal: group %d: live entry %d has no location (known from %d to %d)", g.id, i, first, g.lastIndex))
	}
	return g.locs[i-first]
}

// entryCache keeps a group's newest live entries in memory: raft mostly
// reads just-appended entries, to replicate and apply them.
//
// Invariant: array slots beyond len(ents) are never handed out, and slots
// handed out are never written again, so callers may keep the slices
// Entries returns (MemoryStorage's rule).
type entryCache struct {
	ents  []pb.Entry
	bytes int64
}

// firstIndex is the first cached index, or last+1 when nothing is cached.
func (c *entryCache) firstIndex(last uint64) uint64 {
	if len(c.ents) == 0 {
		return last + 1
	}
	return c.ents[0].Index
}

func (c *entryCache) slice(lo, hi uint64) []pb.Entry {
	base := c.ents[0].Index
	return c.ents[lo-base : hi-base]
}

// add appends ents (contiguous), replacing cached entries from ents[0] on,
// then trims the oldest while over limit. It returns the change in bytes.
func (c *entryCache) add(ents []pb.Entry, limit int64) int64 {
	before := c.bytes
	if len(ents) == 0 || limit <= 0 {
		return 0
	}
	if n := len(c.ents); n > 0 {
		base := c.ents[0].Index
		switch first := ents[0].Index; {
		case first <= base || first > c.ents[n-1].Index+1:
			c.reset()
		case first <= c.ents[n-1].Index:
			keep := int(first - base)
			for _, e := range c.ents[keep:] {
				c.bytes -= int64(e.Size())
			}
			c.ents = c.ents[:keep:keep] // cut slots may be held by readers
		}
	}
	for _, e := range ents {
		c.bytes += int64(e.Size())
	}
	c.ents = append(c.ents, ents...)
	k := 0
	for k < len(c.ents) && c.bytes > limit {
		c.bytes -= int64(c.ents[k].Size())
		k++
	}
	c.dropFront(k)
	return c.bytes - before
}

// compact drops cached entries at or below index.
func (c *entryCache) compact(index uint64) {
	if len(c.ents) == 0 || c.ents[0].Index > index {
		return
	}
	k := int(min(index-c.ents[0].Index+1, uint64(len(c.ents))))
	for _, e := range c.ents[:k] {
		c.bytes -= int64(e.Size())
	}
	c.dropFront(k)
}

func (c *entryCache) dropFront(k int) {
	switch {
	case k == 0:
	case k == len(c.ents):
		c.ents = nil
	default:
		c.ents = c.ents[k:]
	}
}

func (c *entryCache) reset() { c.ents, c.bytes = nil, 0 }
