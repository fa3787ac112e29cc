package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// FuzzDecodeFrame feeds arbitrary bytes to the record decoder and to the
// payload decoders of every record it accepts: none may panic, and an
// accepted record must re-encode to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	var seed []byte
	seed = appendFrame(seed, recSegmentHeader, appendSegmentHeaderPayload(nil, segmentHeader{seq: 3, cp: checkpoint{
		compactIndex: 4, compactTerm: 2, lastIndex: 9, hardState: pb.HardState{Term: 3, Vote: 1, Commit: 7},
		snap: snapRef{meta: pb.SnapshotMetadata{Index: 4, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}, dataCRC: 5, dataLen: 6},
	}}))
	seed = appendFrame(seed, recEntry, appendEntryPayload(nil, &pb.Entry{Index: 5, Term: 2, Data: []byte("hello")}))
	seed = appendFrame(seed, recHardState, appendHardStatePayload(nil, pb.HardState{Term: 3, Commit: 5}))
	seed = appendFrame(seed, recCompact, appendCompactPayload(nil, compactRecord{4, 2}))
	seed = appendFrame(seed, recSnapshot, appendSnapshotPayload(nil, snapshotRecord{install: true, ref: snapRef{meta: pb.SnapshotMetadata{Index: 9, Term: 3}}}))
	seed = appendFrame(seed, recBatchEnd, appendBatchEndPayload(nil, batchEndRecord{start: 100, count: 4}))
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add(make([]byte, 20))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for off := 0; off < len(data); {
			typ, payload, n, err := decodeFrame(data[off:])
			if err != nil {
				return
			}
			if n < frameHeaderSize || n > len(data)-off {
				t.Fatalf("frame size %d out of bounds", n)
			}
			if again := appendFrame(nil, typ, payload); !bytes.Equal(again, data[off:off+n]) {
				t.Fatalf("re-encoding differs")
			}
			decodePayload(typ, payload)
			off += n
		}
	})
}

func decodePayload(typ recordType, payload []byte) {
	switch typ {
	case recSegmentHeader:
		decodeSegmentHeader(payload)
	case recBatchEnd:
		decodeBatchEnd(payload)
	case recEntry:
		decodeEntry(payload)
	case recSnapshotFile:
		var s pb.Snapshot
		_ = s.Unmarshal(payload)
	default:
		decodeOp(typ, payload)
	}
}

// FuzzFrameRoundTrip: whatever is framed decodes back unchanged, and any
// single flipped bit is caught.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(uint8(recEntry), []byte("payload"), uint16(3))
	f.Add(uint8(recBatchEnd), []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte, flip uint16) {
		rt := recordType(typ%uint8(recTypeLimit-1) + 1)
		frame := appendFrame(nil, rt, payload)
		gt, gp, n, err := decodeFrame(frame)
		if err != nil || gt != rt || !bytes.Equal(gp, payload) || n != len(frame) {
			t.Fatalf("round trip: %v %v %d", err, gt, n)
		}
		bit := int(flip) % (8 * len(frame))
		frame[bit/8] ^= 1 << (bit % 8)
		if _, _, _, err := decodeFrame(frame); err == nil {
			t.Fatalf("flipped bit %d went unnoticed", bit)
		}
	})
}

// FuzzReplay puts arbitrary bytes after a valid segment header and
// replays them as the active segment, in memory: replay must return a state
// or an error, never panic, and a state it returns must be consistent (each
// live entry has a term and a location in the segment's valid data).
func FuzzReplay(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, &Options{NoPreallocate: true})
	if err != nil {
		f.Fatal(err)
	}
	// Small seeds keep the fuzzer's minimization quick.
	for _, err := range []error{
		s.Save(pb.HardState{Term: 1, Vote: 1}, ents(1, 1, 1, 1), pb.Snapshot{}),
		s.Save(pb.HardState{Term: 2, Vote: 1, Commit: 2}, ents(3, 2, 2), pb.Snapshot{}),
		s.Compact(2),
	} {
		if err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	real, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		f.Fatal(err)
	}
	_, _, hdrLen, err := decodeFrame(real)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real[hdrLen:])
	f.Add(real[hdrLen : len(real)-5])
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append(append([]byte(nil), real[:hdrLen]...), body...)
		var st logState
		sg := &segment{seq: 1, path: "fuzz"}
		rp := replayer{st: &st, sg: sg, data: data, last: true}
		end, err := rp.run(true)
		if err != nil {
			return
		}
		if end < int64(hdrLen) || end > int64(len(data)) {
			t.Fatalf("end %d outside the data", end)
		}
		if first, last, ok := st.missing(); ok {
			t.Fatalf("entries [%d, %d] not located", first, last)
		}
		for i := st.compactIndex + 1; i <= st.lastIndex && i < st.compactIndex+500; i++ {
			st.term(i)
			r, off, at := st.locate(i)
			if r.seg != sg || off >= end || at > i {
				t.Fatalf("entry %d located at %d (entry %d) of %v", i, off, at, r.seg)
			}
		}
	})
}
