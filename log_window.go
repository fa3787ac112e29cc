package raft

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// window is the in-memory run of log entries: ents follow prev, whose term
// is known even when prev itself is not in memory (it is the compaction
// point, a snapshot's last entry, or an entry the window let go of).
//
// Invariants:
//  1. ents[k].Index == prev.index+1+k.
//  2. Every slice handed out (span) has capacity == length, and array slots
//     it covers are never written again: appends go to slots past len(ents)
//     (never handed out), and replacing entries moves to a fresh array.
//  3. bytes is the payload size of ents.
//  4. arrayCap is the capacity of the array behind ents counted from its
//     first slot; arrayCap-cap(ents) slots before ents[0] are dead.
type window struct {
	prev     entryID
	ents     []pb.Entry
	bytes    entryPayloadSize
	arrayCap int
}

// windowChunk is the room for entries the window grows by at least when its
// array is full, so that a leader's one-entry appends do not each allocate.
// A batch of at least a chunk (a follower's MsgApp) gets an array of its own
// size: the next batch is as likely to find the old entries unneeded.
const windowChunk = 32

// start is the index of the first entry in memory.
func (w *window) start() uint64 { return w.prev.index + 1 }

// end is the index of the last entry (prev.index when ents is empty).
func (w *window) end() uint64 { return w.prev.index + uint64(len(w.ents)) }

// lastID identifies the last entry, or prev when ents is empty.
func (w *window) lastID() entryID {
	if n := len(w.ents); n > 0 {
		return idOfEntry(&w.ents[n-1])
	}
	return w.prev
}

// term returns the term of entry i if the window knows it: i is prev or in
// ents.
func (w *window) term(i uint64) (uint64, bool) {
	switch {
	case i == w.prev.index:
		return w.prev.term, true
	case i > w.prev.index && i <= w.end():
		return w.ents[i-w.start()].Term, true
	}
	return 0, false
}

// span returns the entries [lo, hi), which must be in memory, capped
// (invariant 2).
func (w *window) span(lo, hi uint64) []pb.Entry {
	if lo > hi || lo < w.start() || hi > w.end()+1 {
		panic(fmt.Sprintf("window.span[%d,%d) is not within the window [%d,%d]", lo, hi, w.start(), w.end()))
	}
	k, n := lo-w.start(), hi-w.start()
	return w.ents[k:n:n]
}

// reset makes ents, which follow prev, the whole window. ents is kept, not
// copied: the caller hands it over capped (or nil).
func (w *window) reset(prev entryID, ents []pb.Entry) {
	w.prev, w.ents, w.bytes, w.arrayCap = prev, ents, payloadBytes(ents), cap(ents)
}

// push appends ents, which continue the window, into the array's free
// room (see regrow) or a grown copy.
func (w *window) push(ents []pb.Entry) {
	w.ents = append(w.ents, ents...)
	w.bytes += payloadBytes(ents)
}

// regrow moves the entries from keep on to a fresh array with room for n
// more (plus a chunk of spare room for small appends).
func (w *window) regrow(keep uint64, n int) {
	keep = max(keep, w.start())
	live := w.ents[keep-w.start():]
	spare := windowChunk
	if n >= windowChunk {
		spare = 0
	}
	grown := make([]pb.Entry, len(live), 2*len(live)+n+spare)
	copy(grown, live)
	w.dropTo(keep)
	w.ents, w.arrayCap = grown, cap(grown)
}

// replaceFrom drops the entries from ents[0].Index on and appends ents in
// their place; ents[0].Index must be in [start(), end()]. The kept prefix is
// copied with ents into a fresh array: the replaced slots may have been
// handed out (invariant 2).
func (w *window) replaceFrom(ents []pb.Entry) {
	at := ents[0].Index - w.start()
	w.bytes -= payloadBytes(w.ents[at:])
	kept := w.ents[:at:at]
	w.ents = append(kept, ents...)
	w.arrayCap = cap(w.ents)
	w.bytes += payloadBytes(ents)
}

// dropTo lets go of the entries before index i (start() <= i <= end()+1).
func (w *window) dropTo(i uint64) {
	if i <= w.start() {
		return
	}
	k := i - w.start()
	w.bytes -= payloadBytes(w.ents[:k])
	w.prev = idOfEntry(&w.ents[k-1])
	w.ents = w.ents[k:]
}

// release drops the entries before i. Once the dead slots before the
// window outnumber its entries, the entries move to a fresh array, so that
// the dropped entries' payloads can be collected (a re-slice keeps the
// whole array reachable); copying only then keeps release amortized O(1)
// per entry even when called after every write.
func (w *window) release(i uint64) {
	w.dropTo(i)
	if dead := w.arrayCap - cap(w.ents); dead > len(w.ents) {
		fresh := append([]pb.Entry(nil), w.ents...)
		w.ents, w.arrayCap = fresh, cap(fresh)
	}
}
