// Package logbounds publishes a raft log's first index, last index and last
// entry's term to readers that must not take the log's lock
// (raft.StorageBounds): raft reads the first index on most log lookups, and
// a lock shared with the log's writers costs every such read two atomic
// operations on one contended cache line, or a wait behind a write.
//
// Bounds is a sequence lock. Its writers are serialized by the log's own
// lock; a writer makes the version odd, stores the bounds that changed and
// makes it even again. A reader that sees the same even version before and
// after loading the three values got values that held together at one
// moment.
package logbounds

import (
	"runtime"
	"sync/atomic"
)

// Bounds holds the published bounds. Its zero value publishes (0, 0, 0).
// Store must not be called concurrently with itself.
type Bounds struct {
	version, first, last, lastTerm atomic.Uint64
}

// Store publishes new bounds. Only the values that changed are written:
// each atomic store is a full barrier, and an append, the most frequent
// change, moves only the last index (and seldom the last term).
func (b *Bounds) Store(first, last, lastTerm uint64) {
	b.version.Add(1)
	if b.first.Load() != first {
		b.first.Store(first)
	}
	if b.last.Load() != last {
		b.last.Store(last)
	}
	if b.lastTerm.Load() != lastTerm {
		b.lastTerm.Store(lastTerm)
	}
	b.version.Add(1)
}

// Load returns the last published bounds, whole. It retries while a writer
// is publishing, which takes a few stores.
func (b *Bounds) Load() (first, last, lastTerm uint64) {
	for spins := 0; ; spins++ {
		v := b.version.Load()
		if v&1 == 0 {
			first, last, lastTerm = b.first.Load(), b.last.Load(), b.lastTerm.Load()
			if b.version.Load() == v {
				return first, last, lastTerm
			}
		}
		if spins%16 == 15 {
			// The writer may have been descheduled mid-publication.
			runtime.Gosched()
		}
	}
}
