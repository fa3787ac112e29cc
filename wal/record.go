package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal/internal/frame"
)

// A record is the unit of everything this package writes, in segments and in
// snapshot files alike:
//
//	offset 0: uint32 little-endian payload length n
//	offset 4: uint8 record type
//	offset 5: uint32 little-endian CRC32C of bytes [0,5) followed by the payload
//	offset 9: n bytes of payload
//
// The checksum covers the length and the type as well as the payload, so a
// flipped bit in a length cannot make a reader skip to a wrong boundary and
// still see a good record there by chance (it would need the CRC to match
// too).
const frameHeaderSize = frame.HeaderSize

// maxPayload bounds a record so that a damaged length is recognised as such
// before anything is allocated for it. The length field could hold more, but
// no entry or snapshot this package writes may exceed it.
const maxPayload = 1<<32 - 1 - frameHeaderSize

// recordType says what a record's payload holds. Zero is never written:
// preallocated space reads as zeros, which must not look like a record.
type recordType uint8

const (
	recSegmentHeader recordType = iota + 1 // first record of a segment: identity and checkpoint
	recEntry                               // one log entry
	recHardState                           // a new HardState
	recSnapshot                            // a snapshot was installed (log reset) or created
	recCompact                             // the log was compacted up to an index
	recBatchEnd                            // closes a batch: its records take effect together
	recSnapshotFile                        // the single record of a snapshot file
	recTypeLimit                           // one past the last valid type
)

func (t recordType) String() string {
	switch t {
	case recSegmentHeader:
		return "segment-header"
	case recEntry:
		return "entry"
	case recHardState:
		return "hard-state"
	case recSnapshot:
		return "snapshot"
	case recCompact:
		return "compact"
	case recBatchEnd:
		return "batch-end"
	case recSnapshotFile:
		return "snapshot-file"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

var castagnoli = frame.Castagnoli

// Reasons a frame does not decode. Callers decide whether that means a torn
// tail or corruption; these never escape the package unwrapped.
var (
	errShortFrame  = frame.ErrShort
	errZeroFrame   = frame.ErrZero
	errBadType     = frame.ErrBadType
	errBadChecksum = frame.ErrBadChecksum
	errBadPayload  = errors.New("malformed record payload")
)

// appendFrame appends one framed record holding payload to dst.
func appendFrame(dst []byte, typ recordType, payload []byte) []byte {
	if uint64(len(payload)) > maxPayload {
		panic(fmt.Sprintf("wal: record payload of %d bytes exceeds the limit %d (callers check sizes first)", len(payload), maxPayload))
	}
	return frame.Append(dst, uint8(typ), payload)
}

// decodeFrame decodes the record at the start of buf (frame.Decode): a
// segment header or a snapshot file's record, whose checksums start from
// zero.
func decodeFrame(buf []byte) (typ recordType, payload []byte, size int, err error) {
	return decodeSeeded(buf, 0)
}

// segmentSeed is what the checksum of every record of segment seq after
// its header starts from. A segment's file may be a recycled one (spare.go)
// that still holds the records of the segment it was before; those were
// checksummed under that segment's seed, so none of them decodes as a
// record of this one (frame.DecodeSeeded), and recovery reads them as the
// damage a torn write leaves, never as data. Sequence numbers are never
// reused for a file holding records, and two segments share a seed only
// if their numbers differ by a multiple of 2^32 (a log of 256 PiB at the
// default segment size).
func segmentSeed(seq uint64) uint32 { return uint32(seq) }

// decodeSeeded decodes the record at the start of buf whose checksum
// started from seed.
func decodeSeeded(buf []byte, seed uint32) (typ recordType, payload []byte, size int, err error) {
	t, payload, size, err := frame.DecodeSeeded(buf, uint8(recTypeLimit), seed)
	return recordType(t), payload, size, err
}

// appendSeeded appends one framed record of a segment's body, checksummed
// from seed (segmentSeed).
func appendSeeded(dst []byte, typ recordType, payload []byte, seed uint32) []byte {
	dst, start := frame.Begin(dst)
	dst = append(dst, payload...)
	frame.FinishSeeded(dst, start, uint8(typ), seed)
	return dst
}

func allZero(b []byte) bool { return frame.AllZero(b) }

// Payload encodings. They are fixed-width little-endian fields except where
// a protobuf message (ConfState inside snapshot metadata) has its own
// encoding; every decoder checks lengths before reading.

// entryHeaderSize is index, term and entry type ahead of the entry's data.
const entryHeaderSize = 8 + 8 + 1

func appendEntryPayload(dst []byte, e *pb.Entry) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, e.Index)
	dst = binary.LittleEndian.AppendUint64(dst, e.Term)
	dst = append(dst, byte(e.Type))
	return append(dst, e.Data...)
}

// entryID reads only the index and term of an entry payload; recovery needs
// nothing else, so it does not copy data.
func entryID(p []byte) (index, term uint64, err error) {
	if len(p) < entryHeaderSize {
		return 0, 0, errBadPayload
	}
	return binary.LittleEndian.Uint64(p[0:8]), binary.LittleEndian.Uint64(p[8:16]), nil
}

// decodeEntry decodes an entry payload into a fresh entry that shares no
// memory with p.
func decodeEntry(p []byte) (pb.Entry, error) {
	index, term, err := entryID(p)
	if err != nil {
		return pb.Entry{}, err
	}
	typ := pb.EntryType(p[16])
	if _, known := pb.EntryType_name[int32(typ)]; !known {
		return pb.Entry{}, errBadPayload
	}
	e := pb.Entry{Index: index, Term: term, Type: typ}
	if data := p[entryHeaderSize:]; len(data) > 0 {
		e.Data = append([]byte(nil), data...)
	}
	return e, nil
}

func appendHardStatePayload(dst []byte, hs pb.HardState) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, hs.Term)
	dst = binary.LittleEndian.AppendUint64(dst, hs.Vote)
	return binary.LittleEndian.AppendUint64(dst, hs.Commit)
}

func decodeHardState(p []byte) (pb.HardState, error) {
	if len(p) != 24 {
		return pb.HardState{}, errBadPayload
	}
	return pb.HardState{
		Term:   binary.LittleEndian.Uint64(p[0:8]),
		Vote:   binary.LittleEndian.Uint64(p[8:16]),
		Commit: binary.LittleEndian.Uint64(p[16:24]),
	}, nil
}

// snapRef describes the latest snapshot as the log knows it: its metadata
// and the checksum and length of its file's payload, so that recovery can
// tell the right file from a stale or damaged one. A zero snapRef means no
// snapshot.
type snapRef struct {
	meta    pb.SnapshotMetadata
	dataCRC uint32 // CRC32C of the snapshot file's record payload
	dataLen uint64 // length of that payload
}

func (r snapRef) empty() bool { return r.meta.Index == 0 }

func appendSnapRef(dst []byte, r snapRef) []byte {
	meta, err := r.meta.Marshal()
	if err != nil {
		panic(fmt.Sprintf("wal: marshaling snapshot metadata cannot fail: %v", err))
	}
	dst = binary.LittleEndian.AppendUint32(dst, r.dataCRC)
	dst = binary.LittleEndian.AppendUint64(dst, r.dataLen)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(meta)))
	return append(dst, meta...)
}

// decodeSnapRef decodes a snapRef and returns what follows it in p.
func decodeSnapRef(p []byte) (snapRef, []byte, error) {
	if len(p) < 16 {
		return snapRef{}, nil, errBadPayload
	}
	r := snapRef{
		dataCRC: binary.LittleEndian.Uint32(p[0:4]),
		dataLen: binary.LittleEndian.Uint64(p[4:12]),
	}
	n := binary.LittleEndian.Uint32(p[12:16])
	p = p[16:]
	if uint64(n) > uint64(len(p)) {
		return snapRef{}, nil, errBadPayload
	}
	if err := r.meta.Unmarshal(p[:n]); err != nil {
		return snapRef{}, nil, fmt.Errorf("%w: snapshot metadata: %v", errBadPayload, err)
	}
	return r, p[n:], nil
}

// snapshotRecord is the payload of recSnapshot.
type snapshotRecord struct {
	// install is true when the snapshot replaced the log (ApplySnapshot),
	// false when it was only taken from the applied state (CreateSnapshot).
	install bool
	// inline says the snapshot's data follows in the record itself, not
	// in a snapshot file (a small snapshot taken by CreateSnapshot, see
	// inlineSnapshotLimit); ref's checksum and length are then the data's.
	inline bool
	ref    snapRef
	// data is the inline data; decoding makes it alias the payload.
	data []byte
}

// The first byte of a snapshot record's payload.
const (
	snapFlagCreated byte = iota // taken by CreateSnapshot, data in a file
	snapFlagInstall             // installed by ApplySnapshot, data in a file
	snapFlagInline              // taken by CreateSnapshot, data in the record
)

func appendSnapshotPayload(dst []byte, s snapshotRecord) []byte {
	flag := snapFlagCreated
	switch {
	case s.install:
		flag = snapFlagInstall
	case s.inline:
		flag = snapFlagInline
	}
	dst = appendSnapRef(append(dst, flag), s.ref)
	if s.inline {
		dst = append(dst, s.data...)
	}
	return dst
}

func decodeSnapshotRecord(p []byte) (snapshotRecord, error) {
	if len(p) < 1 || p[0] > snapFlagInline {
		return snapshotRecord{}, errBadPayload
	}
	ref, rest, err := decodeSnapRef(p[1:])
	if err != nil {
		return snapshotRecord{}, err
	}
	r := snapshotRecord{install: p[0] == snapFlagInstall, inline: p[0] == snapFlagInline, ref: ref}
	if r.inline {
		if uint64(len(rest)) != ref.dataLen || crc32.Checksum(rest, castagnoli) != ref.dataCRC {
			return snapshotRecord{}, fmt.Errorf("%w: inline snapshot data does not match its checksum", errBadPayload)
		}
		r.data, rest = rest, nil
	}
	if len(rest) != 0 || ref.empty() {
		return snapshotRecord{}, errBadPayload
	}
	return r, nil
}

// compactRecord is the payload of recCompact: the new compaction point.
type compactRecord struct{ index, term uint64 }

func appendCompactPayload(dst []byte, c compactRecord) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, c.index)
	return binary.LittleEndian.AppendUint64(dst, c.term)
}

func decodeCompactRecord(p []byte) (compactRecord, error) {
	if len(p) != 16 {
		return compactRecord{}, errBadPayload
	}
	return compactRecord{binary.LittleEndian.Uint64(p[0:8]), binary.LittleEndian.Uint64(p[8:16])}, nil
}

// batchEndRecord closes a batch. start is the segment offset of the batch's
// first record; count is how many records the batch has before this one.
// Recovery applies a batch only once it has read its end, which is what
// makes a Save all-or-nothing across a crash.
type batchEndRecord struct {
	start int64
	count uint32
}

func appendBatchEndPayload(dst []byte, b batchEndRecord) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(b.start))
	return binary.LittleEndian.AppendUint32(dst, b.count)
}

func decodeBatchEnd(p []byte) (batchEndRecord, error) {
	if len(p) != 12 {
		return batchEndRecord{}, errBadPayload
	}
	start := binary.LittleEndian.Uint64(p[0:8])
	if start > 1<<62 {
		return batchEndRecord{}, errBadPayload
	}
	return batchEndRecord{start: int64(start), count: binary.LittleEndian.Uint32(p[8:12])}, nil
}

// segmentMagic opens every segment header; it tells a segment of this
// format from any other file that happens to carry the right name.
const segmentMagic = "raftkit-wal\x00"

// formatVersion 2 checksums every record after a segment's header from
// the segment's seed (segmentSeed), so that segment files can be recycled;
// version 1 started every checksum from zero. The header itself is still
// checksummed from zero, so that a build that knows only version 1 reads
// it and refuses the version by name rather than calling the log corrupt.
const formatVersion = 2

// checkpoint is the state of the log at the moment a segment was started.
// Each segment header carries one, so recovery can begin at any segment
// and older segments can be deleted once nothing in them is live.
type checkpoint struct {
	compactIndex, compactTerm uint64
	lastIndex                 uint64
	hardState                 pb.HardState
	snap                      snapRef
}

// segmentHeader is the payload of recSegmentHeader.
type segmentHeader struct {
	seq uint64 // must match the file name
	cp  checkpoint
}

func appendSegmentHeaderPayload(dst []byte, h segmentHeader) []byte {
	dst = append(dst, segmentMagic...)
	dst = binary.LittleEndian.AppendUint16(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint64(dst, h.seq)
	dst = binary.LittleEndian.AppendUint64(dst, h.cp.compactIndex)
	dst = binary.LittleEndian.AppendUint64(dst, h.cp.compactTerm)
	dst = binary.LittleEndian.AppendUint64(dst, h.cp.lastIndex)
	dst = appendHardStatePayload(dst, h.cp.hardState)
	return appendSnapRef(dst, h.cp.snap)
}

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	const fixed = len(segmentMagic) + 2 + 8*4 + 24
	if len(p) < fixed || string(p[:len(segmentMagic)]) != segmentMagic {
		return segmentHeader{}, fmt.Errorf("%w: not a segment header", errBadPayload)
	}
	p = p[len(segmentMagic):]
	if v := binary.LittleEndian.Uint16(p[0:2]); v != formatVersion {
		return segmentHeader{}, fmt.Errorf("%w: unsupported format version %d", errBadPayload, v)
	}
	var h segmentHeader
	h.seq = binary.LittleEndian.Uint64(p[2:10])
	h.cp.compactIndex = binary.LittleEndian.Uint64(p[10:18])
	h.cp.compactTerm = binary.LittleEndian.Uint64(p[18:26])
	h.cp.lastIndex = binary.LittleEndian.Uint64(p[26:34])
	hs, err := decodeHardState(p[34:58])
	if err != nil {
		return segmentHeader{}, err
	}
	h.cp.hardState = hs
	ref, rest, err := decodeSnapRef(p[58:])
	if err != nil {
		return segmentHeader{}, err
	}
	if len(rest) != 0 || h.cp.lastIndex < h.cp.compactIndex {
		return segmentHeader{}, errBadPayload
	}
	h.cp.snap = ref
	return h, nil
}
