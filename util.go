package raft

import (
	"math"

	pb "github.com/raftkit/raft/raftpb"
)

// noLimit is the size budget that never runs out. Config fields that bound
// sizes use it for "unlimited", and the log uses it when a caller wants every
// entry of a range.
const noLimit = math.MaxUint64

// entryEncodingSize counts bytes of protobuf-encoded entries (pb.Entry.Size()).
// Message and Ready size limits are expressed in this unit.
type entryEncodingSize uint64

// entryPayloadSize counts bytes of entry payloads (len(pb.Entry.Data)) only.
// The uncommitted-log budget and flow control are expressed in this unit, so
// that an empty entry (such as the one a new leader appends) costs nothing.
type entryPayloadSize uint64

// encodedSizeOf sums the encoded size of ents.
func encodedSizeOf(ents []pb.Entry) entryEncodingSize {
	var total entryEncodingSize
	for i := range ents {
		total += entryEncodingSize(ents[i].Size())
	}
	return total
}

// payloadBytes sums the payload bytes of ents.
func payloadBytes(ents []pb.Entry) entryPayloadSize {
	var total entryPayloadSize
	for i := range ents {
		total += entryPayloadSize(len(ents[i].Data))
	}
	return total
}

// fittingPrefix returns how many leading entries of ents fit in budget bytes
// of encoding, which may be zero.
func fittingPrefix(ents []pb.Entry, budget entryEncodingSize) int {
	var used entryEncodingSize
	for n := range ents {
		used += entryEncodingSize(ents[n].Size())
		if used > budget {
			return n
		}
	}
	return len(ents)
}

// prefixWithin cuts ents to its longest prefix whose encoded size is within
// maxSize, but never below one entry: an entry larger than any budget must
// still make progress, so it travels alone.
func prefixWithin(ents []pb.Entry, maxSize entryEncodingSize) []pb.Entry {
	if len(ents) == 0 {
		return ents
	}
	return ents[:max(1, fittingPrefix(ents, maxSize))]
}

// joinEntries returns dst followed by vals. When dst has no room, the result is a
// fresh array of exactly the needed length, so neither input's array is
// written beyond its length.
func joinEntries(dst, vals []pb.Entry) []pb.Entry {
	total := len(dst) + len(vals)
	if total <= cap(dst) {
		return append(dst, vals...)
	}
	out := make([]pb.Entry, total)
	n := copy(out, dst)
	copy(out[n:], vals)
	return out
}

// noCopy marks a struct that must not be copied after first use: go vet's
// copylocks check reports copies of a struct holding one.
type noCopy struct{}

// Lock is never called; it makes noCopy a Locker for go vet.
func (*noCopy) Lock() {}

// Unlock is never called; see Lock.
func (*noCopy) Unlock() {}
