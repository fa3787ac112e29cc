package multiraft

import "sync"

// A round's batches (outbox) and a received frame's batch (DecodeBatch)
// hold their items, whole raft messages, in slices that live only until
// NetTransport encoded the batch or Host.Receive copied its items into the
// groups' inboxes. With hundreds of groups per round those slices were
// most of the bytes a host allocated; NetTransport hands them back here
// and the next batches take them.
//
// Invariant: a slice is put back only by the one holder that knows
// nothing refers to it any more (NetTransport's writer after writing it
// or merging it into another, its reader after Host.Receive returned);
// every other transport just drops its batches, which the collector
// takes as before.
var itemSlices sync.Pool // of *[]Item, empty, capacity kept

// itemsWithRoom returns an empty slice of items with room for at least n.
func itemsWithRoom(n int) []Item {
	if p, ok := itemSlices.Get().(*[]Item); ok {
		if cap(*p) >= n {
			return (*p)[:0]
		}
		itemSlices.Put(p) // too small for this batch; another may use it
	}
	return make([]Item, 0, n)
}

// recycleItems gives s back for reuse; its items are cleared first, so
// that the pool keeps no message's entries alive.
//
// Only s[:len(s)] is cleared. Invariant: past its length, a slice from the
// pool (or a new one) is all zero, because its holders only append to it:
// nothing shortens a batch's items in place (divertSnapshots and memnet
// filter into new slices). A slice taken for a small frame may have room
// for hundreds of items, and clearing all of it on every frame was 1-2% of
// a many-group host's CPU.
func recycleItems(s []Item) {
	if cap(s) == 0 {
		return
	}
	clear(s)
	s = s[:0]
	itemSlices.Put(&s)
}
