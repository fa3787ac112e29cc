package wal

import (
	"encoding/binary"
	"fmt"
	"io"

	pb "github.com/raftkit/raft/raftpb"
)

// entryCache keeps the newest live entries in memory, up to limit bytes of
// encoding: raft mostly reads just-appended entries (to replicate and apply
// them), so a suffix of the log serves most reads.
//
// Invariants:
//  1. ents is empty or a contiguous suffix of the live log.
//  2. Array slots beyond len(ents) are never handed out, and slots that were
//     handed out are never written again, so callers may keep the slices
//     Entries returns (the same rule MemoryStorage follows).
type entryCache struct {
	ents  []pb.Entry
	bytes int64
	limit int64
}

// firstIndex is the first cached index, or last+1 when nothing is cached.
func (c *entryCache) firstIndex(last uint64) uint64 {
	if len(c.ents) == 0 {
		return last + 1
	}
	return c.ents[0].Index
}

// slice returns cached entries [lo, hi); both must be within the cache.
func (c *entryCache) slice(lo, hi uint64) []pb.Entry {
	base := c.ents[0].Index
	return c.ents[lo-base : hi-base]
}

// add appends ents (contiguous), replacing any cached entries from
// ents[0].Index on.
func (c *entryCache) add(ents []pb.Entry) {
	if len(ents) == 0 || c.limit < 0 {
		return
	}
	if n := len(c.ents); n > 0 {
		base := c.ents[0].Index
		switch first := ents[0].Index; {
		case first <= base:
			c.reset()
		case first <= c.ents[n-1].Index:
			keep := int(first - base)
			for _, e := range c.ents[keep:] {
				c.bytes -= int64(e.Size())
			}
			// The cut-off slots may be held by callers; capping the
			// capacity makes the append below copy (invariant 2).
			c.ents = c.ents[:keep:keep]
		case first != c.ents[n-1].Index+1:
			c.reset()
		}
	}
	for _, e := range ents {
		c.bytes += int64(e.Size())
	}
	c.ents = append(c.ents, ents...)
	c.trim()
}

// trim drops the oldest entries while over the limit.
func (c *entryCache) trim() {
	k := 0
	for k < len(c.ents) && c.bytes > c.limit {
		c.bytes -= int64(c.ents[k].Size())
		k++
	}
	c.dropFront(k)
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
	if k == 0 {
		return
	}
	if k == len(c.ents) {
		c.ents = nil
		return
	}
	// The dead prefix of the array (and the payloads it points to) is
	// freed when append next reallocates, which bounds it by the live part.
	c.ents = c.ents[k:]
}

func (c *entryCache) reset() { c.ents, c.bytes = nil, 0 }

// segReader reads records of one segment sequentially from an offset, with
// positioned reads into a buffer, never past the segment's valid data.
type segReader struct {
	sg  *segment
	pos int64  // file offset of buf[0]
	buf []byte // buffered bytes
	at  int    // next record within buf
}

const readChunk = 64 << 10

// nextEntry returns the payload of the next entry record (skipping other
// records) and its offset. The payload aliases the reader's buffer.
func (r *segReader) nextEntry() ([]byte, int64, error) {
	for {
		typ, payload, off, err := r.next()
		if err != nil || typ == recEntry {
			return payload, off, err
		}
	}
}

func (r *segReader) next() (recordType, []byte, int64, error) {
	off := r.pos + int64(r.at)
	corrupt := func(reason string) (recordType, []byte, int64, error) {
		return 0, nil, 0, &CorruptionError{File: r.sg.path, Offset: off, Reason: reason}
	}
	if err := r.fill(frameHeaderSize); err != nil {
		return 0, nil, 0, err
	}
	if len(r.buf)-r.at < frameHeaderSize {
		return corrupt("entry record missing before the end of the segment")
	}
	n := int64(binary.LittleEndian.Uint32(r.buf[r.at:]))
	if off+frameHeaderSize+n > r.sg.size {
		return corrupt("record extends past the end of the segment")
	}
	if err := r.fill(frameHeaderSize + int(n)); err != nil {
		return 0, nil, 0, err
	}
	typ, payload, size, err := decodeSeeded(r.buf[r.at:r.at+frameHeaderSize+int(n)], segmentSeed(r.sg.seq))
	if err != nil {
		return corrupt(err.Error())
	}
	r.at += size
	return typ, payload, off, nil
}

// fill makes need bytes available at r.at, or as many as the segment has.
func (r *segReader) fill(need int) error {
	if len(r.buf)-r.at >= need {
		return nil
	}
	rest := copy(r.buf, r.buf[r.at:])
	r.pos += int64(r.at)
	r.buf, r.at = r.buf[:rest], 0
	if want := max(need, readChunk); cap(r.buf) < want {
		r.buf = append(make([]byte, 0, want), r.buf...)
	}
	end := min(r.pos+int64(cap(r.buf)), r.sg.size)
	from := r.pos + int64(len(r.buf))
	if from >= end {
		return nil
	}
	m, err := r.sg.f.ReadAt(r.buf[len(r.buf):cap(r.buf)][:end-from], from)
	r.buf = r.buf[:len(r.buf)+m]
	if err != nil && err != io.EOF {
		return fmt.Errorf("wal: reading %s: %w", r.sg.path, err)
	}
	return nil
}
