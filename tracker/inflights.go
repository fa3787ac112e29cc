package tracker

import "fmt"

// flight is one unacknowledged MsgApp: the index of its last entry and the
// payload size of all its entries.
type flight struct {
	last uint64
	size uint64
}

// Inflights is the flow-control window of one follower: the MsgApp messages
// sent to it but not yet acknowledged. The window is bounded both by a number
// of messages and (optionally) by the total payload bytes of those messages.
//
// The leader checks Full before sending, records each send with Add, and
// releases acknowledged messages with FreeLE.
//
// Storage is a ring buffer that starts empty and grows on demand up to the
// message limit, so that a process hosting many mostly-idle groups does not
// pay for windows it never fills; once grown, Add and FreeLE do not allocate.
//
// Invariants:
//  1. 0 <= n <= len(ring) <= maxCount (ring grows only when it is full).
//  2. The live flights are ring[(head+k) % len(ring)] for k in [0, n), in
//     the order they were added, and their last indexes never decrease.
//  3. bytes is the sum of size over the live flights.
type Inflights struct {
	ring  []flight
	head  int    // ring position of the oldest live flight
	n     int    // number of live flights
	bytes uint64 // total size of the live flights

	maxCount int    // message limit
	maxBytes uint64 // byte limit; 0 means unlimited
}

// NewInflights returns an empty window that admits up to size messages and,
// if maxBytes is non-zero, stops admitting once the in-flight payload reaches
// maxBytes. The byte limit is soft: a single message may take the total from
// below maxBytes to any amount above it.
func NewInflights(size int, maxBytes uint64) *Inflights {
	return &Inflights{maxCount: size, maxBytes: maxBytes}
}

// Clone returns a copy of the window that shares no memory with in. The
// copy's ring holds just the live flights, laid out from position 0 (none:
// no ring at all, which saves Status an allocation per idle peer); Add grows
// it as usual.
func (in *Inflights) Clone() *Inflights {
	c := *in
	c.ring, c.head = nil, 0
	if in.n > 0 {
		c.ring = make([]flight, in.n)
		k := copy(c.ring, in.ring[in.head:min(in.head+in.n, len(in.ring))])
		copy(c.ring[k:], in.ring[:in.n-k])
	}
	return &c
}

// Add records a MsgApp whose last entry is at index and whose entries total
// bytes in size. The caller must have checked Full first, and indexes must be
// added in non-decreasing order; FreeLE relies on that order.
func (in *Inflights) Add(index, bytes uint64) {
	if in.Full() {
		panic(fmt.Sprintf("tracker: Add(%d, %d) on a full Inflights (%d/%d messages, %d/%d bytes)",
			index, bytes, in.n, in.maxCount, in.bytes, in.maxBytes))
	}
	if in.n == len(in.ring) {
		in.enlarge()
	}
	pos := in.head + in.n
	if pos >= len(in.ring) {
		pos -= len(in.ring)
	}
	in.ring[pos] = flight{last: index, size: bytes}
	in.n++
	in.bytes += bytes
}

// enlarge replaces a full ring with one about twice as large (capped at the
// message limit), laying the live flights out from position 0.
func (in *Inflights) enlarge() {
	newLen := 2 * len(in.ring)
	if newLen < 4 {
		newLen = 4
	}
	if newLen > in.maxCount {
		newLen = in.maxCount
	}
	grown := make([]flight, newLen)
	// The ring is full here, so the live flights are the tail from head
	// followed by the prefix before head.
	k := copy(grown, in.ring[in.head:])
	copy(grown[k:], in.ring[:in.head])
	in.ring = grown
	in.head = 0
}

// FreeLE releases every in-flight message whose last index is at or below
// to, i.e. everything a follower's acknowledgement of to covers. Messages are
// released from the oldest on, stopping at the first one above to.
func (in *Inflights) FreeLE(to uint64) {
	for in.n > 0 {
		f := in.ring[in.head]
		if f.last > to {
			return
		}
		in.bytes -= f.size
		in.n--
		if in.head++; in.head == len(in.ring) {
			in.head = 0
		}
	}
}

// Full reports whether the window admits no further message: either the
// message limit is reached, or a byte limit is set and has been reached.
func (in *Inflights) Full() bool {
	if in.n >= in.maxCount {
		return true
	}
	return in.maxBytes != 0 && in.bytes >= in.maxBytes
}

// Count returns the number of messages in flight.
func (in *Inflights) Count() int { return in.n }

// forgetAll forgets every in-flight message but keeps the grown ring for reuse.
func (in *Inflights) forgetAll() {
	in.head, in.n, in.bytes = 0, 0, 0
}
