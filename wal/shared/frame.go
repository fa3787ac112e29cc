package shared

import (
	"encoding/binary"
	"errors"
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal/internal/frame"
)

// Records are framed as in package wal:
//
//	offset 0: uint32 little-endian payload length n
//	offset 4: uint8 record type
//	offset 5: uint32 little-endian CRC32C of bytes [0,5) followed by the payload
//	offset 9: n bytes of payload
//
// The types differ (every record but the segment header and the batch end
// names a group), so a wal segment is never mistaken for a shared one: the
// header's magic differs too.
const frameHeaderSize = frame.HeaderSize

// maxBatch bounds the bytes of one batch, so that every record offset in a
// segment fits the uint32 offsets of the in-memory index.
const maxBatch = 1 << 30

type recordType uint8

const (
	recSegmentHeader recordType = iota + 1 // identity and checkpoint of every group
	recCreate                              // a group was created, empty
	recRemove                              // a group was removed with everything it held
	recEntry                               // one entry of one group
	recHardState                           // a group's new HardState
	recSnapshot                            // a group's snapshot installed (log reset) or taken
	recCompact                             // a group's log compacted up to an index
	recBatchEnd                            // closes a batch: its records take effect together
	recSnapshotFile                        // the single record of a snapshot file
	recTypeLimit
)

func (t recordType) String() string {
	names := [...]string{"", "segment-header", "create", "remove", "entry", "hard-state",
		"snapshot", "compact", "batch-end", "snapshot-file"}
	if t > 0 && t < recTypeLimit {
		return names[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

var castagnoli = frame.Castagnoli

var (
	errShortFrame  = frame.ErrShort
	errZeroFrame   = frame.ErrZero
	errBadType     = frame.ErrBadType
	errBadChecksum = frame.ErrBadChecksum
	errBadPayload  = errors.New("malformed record payload")
)

// beginFrame and finishFrame frame a record in place (frame.Begin).
func beginFrame(dst []byte) ([]byte, int) { return frame.Begin(dst) }

func finishFrame(buf []byte, start int, typ recordType) { frame.Finish(buf, start, uint8(typ)) }

func appendFrame(dst []byte, typ recordType, payload []byte) []byte {
	return frame.Append(dst, uint8(typ), payload)
}

// decodeFrame decodes the record at the start of buf (frame.Decode).
func decodeFrame(buf []byte) (typ recordType, payload []byte, size int, err error) {
	t, payload, size, err := frame.Decode(buf, uint8(recTypeLimit))
	return recordType(t), payload, size, err
}

func allZero(b []byte) bool { return frame.AllZero(b) }

// reader decodes fixed-width little-endian fields and remembers the first
// shortfall, so decoders check once at the end instead of at every field.
type reader struct {
	p   []byte
	bad bool
}

func (r *reader) u64() uint64 {
	if len(r.p) < 8 {
		r.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint64(r.p)
	r.p = r.p[8:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.p) < 4 {
		r.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(r.p)
	r.p = r.p[4:]
	return v
}

func (r *reader) u8() uint8 {
	if len(r.p) < 1 {
		r.bad = true
		return 0
	}
	v := r.p[0]
	r.p = r.p[1:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.p)) < n {
		r.bad = true
		return nil
	}
	v := r.p[:n]
	r.p = r.p[n:]
	return v
}

// done reports a malformed payload: short, or with bytes left over.
func (r *reader) done() error {
	if r.bad || len(r.p) != 0 {
		return errBadPayload
	}
	return nil
}

func putU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }

// Payloads. Every record but the header and the batch end starts with the
// group ID.

// entryHeaderSize is group, index, term and entry type ahead of the data.
const entryHeaderSize = 8 + 8 + 8 + 1

func appendEntryPayload(dst []byte, group uint64, e *pb.Entry) []byte {
	dst = putU64(putU64(putU64(dst, group), e.Index), e.Term)
	dst = append(dst, byte(e.Type))
	return append(dst, e.Data...)
}

// decodeEntry decodes an entry payload into an entry that shares no memory
// with p.
func decodeEntry(p []byte) (group uint64, e pb.Entry, err error) {
	r := reader{p: p}
	group, e.Index, e.Term = r.u64(), r.u64(), r.u64()
	e.Type = pb.EntryType(r.u8())
	if r.bad {
		return 0, pb.Entry{}, errBadPayload
	}
	if _, known := pb.EntryType_name[int32(e.Type)]; !known {
		return 0, pb.Entry{}, errBadPayload
	}
	if len(r.p) > 0 {
		e.Data = append([]byte(nil), r.p...)
	}
	return group, e, nil
}

func appendHardState(dst []byte, hs pb.HardState) []byte {
	return putU64(putU64(putU64(dst, hs.Term), hs.Vote), hs.Commit)
}

func readHardState(r *reader) pb.HardState {
	return pb.HardState{Term: r.u64(), Vote: r.u64(), Commit: r.u64()}
}

// snapRef is what the log knows of a group's latest snapshot: its metadata
// and the checksum and length of its file's payload, so that recovery tells
// the right file from a stale or damaged one. The snapshot data itself
// stays in the file and is read when raft asks for it, so an idle group
// costs no memory for it.
type snapRef struct {
	meta    pb.SnapshotMetadata
	dataCRC uint32
	dataLen uint64
}

func (r snapRef) empty() bool { return r.meta.Index == 0 }

func appendSnapRef(dst []byte, r snapRef) []byte {
	meta, err := r.meta.Marshal()
	if err != nil {
		panic(fmt.Sprintf("shared wal: marshaling snapshot metadata cannot fail: %v", err))
	}
	dst = binary.LittleEndian.AppendUint32(dst, r.dataCRC)
	dst = putU64(dst, r.dataLen)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(meta)))
	return append(dst, meta...)
}

func readSnapRef(r *reader) snapRef {
	var s snapRef
	s.dataCRC = r.u32()
	s.dataLen = r.u64()
	meta := r.bytes(uint64(r.u32()))
	if r.bad {
		return snapRef{}
	}
	if err := s.meta.Unmarshal(meta); err != nil {
		r.bad = true
	}
	return s
}

// batchEndSize is the framed size of a recBatchEnd record.
const batchEndSize = frameHeaderSize + 12

// segmentMagic opens every segment header.
const segmentMagic = "raftkit-swal\x00"

const formatVersion = 1

// groupCheckpoint is one group's state when a segment was started. Each
// segment header carries one per live group, so recovery can begin at any
// segment and the segments before it can be deleted once no live group has
// a live entry in them.
type groupCheckpoint struct {
	id                        uint64
	compactIndex, compactTerm uint64
	lastIndex                 uint64
	hardState                 pb.HardState
	snap                      snapRef
}

func appendCheckpoint(dst []byte, c *groupCheckpoint) []byte {
	dst = putU64(putU64(putU64(putU64(dst, c.id), c.compactIndex), c.compactTerm), c.lastIndex)
	dst = appendHardState(dst, c.hardState)
	return appendSnapRef(dst, c.snap)
}

func readCheckpoint(r *reader) groupCheckpoint {
	c := groupCheckpoint{id: r.u64(), compactIndex: r.u64(), compactTerm: r.u64(), lastIndex: r.u64()}
	c.hardState = readHardState(r)
	c.snap = readSnapRef(r)
	if c.lastIndex < c.compactIndex {
		r.bad = true
	}
	return c
}

// segmentHeader is the payload of recSegmentHeader.
type segmentHeader struct {
	seq    uint64
	groups []groupCheckpoint // in increasing ID order
}

func appendSegmentHeader(dst []byte, h *segmentHeader) []byte {
	dst = append(dst, segmentMagic...)
	dst = binary.LittleEndian.AppendUint16(dst, formatVersion)
	dst = putU64(dst, h.seq)
	dst = putU64(dst, uint64(len(h.groups)))
	for k := range h.groups {
		dst = appendCheckpoint(dst, &h.groups[k])
	}
	return dst
}

// minCheckpointSize bounds how many checkpoints a header of a given size
// can claim, so that a damaged count allocates nothing absurd.
const minCheckpointSize = 8*4 + 24 + 16

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	r := reader{p: p}
	if string(r.bytes(uint64(len(segmentMagic)))) != segmentMagic {
		return segmentHeader{}, fmt.Errorf("%w: not a shared WAL segment", errBadPayload)
	}
	if v := uint16(r.u8()) | uint16(r.u8())<<8; v != formatVersion {
		return segmentHeader{}, fmt.Errorf("%w: unsupported format version %d", errBadPayload, v)
	}
	h := segmentHeader{seq: r.u64()}
	n := r.u64()
	if r.bad || n > uint64(len(r.p)/minCheckpointSize) {
		return segmentHeader{}, errBadPayload
	}
	h.groups = make([]groupCheckpoint, 0, n)
	for k := uint64(0); k < n && !r.bad; k++ {
		c := readCheckpoint(&r)
		if len(h.groups) > 0 && c.id <= h.groups[len(h.groups)-1].id {
			return segmentHeader{}, fmt.Errorf("%w: checkpoints out of order", errBadPayload)
		}
		h.groups = append(h.groups, c)
	}
	if err := r.done(); err != nil {
		return segmentHeader{}, err
	}
	return h, nil
}

// batchEndRecord closes a batch. start is the segment offset of the batch's
// first record, count the number of records before this one. Recovery
// applies a batch only once it has read its end: that is what makes a
// batch all-or-nothing for every group in it.
type batchEndRecord struct {
	start int64
	count uint32
}

func appendBatchEnd(dst []byte, b batchEndRecord) []byte {
	dst = putU64(dst, uint64(b.start))
	return binary.LittleEndian.AppendUint32(dst, b.count)
}

func decodeBatchEnd(p []byte) (batchEndRecord, error) {
	r := reader{p: p}
	b := batchEndRecord{start: int64(r.u64() & (1<<62 - 1)), count: r.u32()}
	if err := r.done(); err != nil || len(p) != 12 || p[7]&0xc0 != 0 {
		return batchEndRecord{}, errBadPayload
	}
	return b, nil
}
