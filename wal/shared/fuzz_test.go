package shared

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// fuzzSeedWAL writes a small WAL of three groups (entries, an overwrite, a
// compaction, a snapshot, a removal) and returns its directory and the
// bytes of its only segment.
func fuzzSeedWAL(f *testing.F) (string, []byte) {
	dir := f.TempDir()
	w, err := Open(dir, &Options{NoPreallocate: true, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	steps := []func() error{
		func() error { _, err := w.CreateGroup(1); return err },
		func() error { _, err := w.CreateGroup(2); return err },
		func() error { _, err := w.CreateGroup(3); return err },
		func() error {
			return w.SaveBatch([]GroupUpdate{
				{GroupID: 1, HardState: pb.HardState{Term: 1, Commit: 2}, Entries: entsOf(1, 1, 1, 1, 1)},
				{GroupID: 2, HardState: pb.HardState{Term: 2, Vote: 2}, Entries: entsOf(2, 1, 2, 2)},
			})
		},
		func() error { return mustGroupF(w, 2).Append(entsOf(2, 2, 3)) },
		func() error { return mustGroupF(w, 1).Compact(2) },
		func() error {
			_, err := mustGroupF(w, 1).CreateSnapshot(3, &pb.ConfState{Voters: []uint64{1}}, []byte("d"))
			return err
		},
		func() error { return w.RemoveGroup(3) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			f.Fatal(err)
		}
	}
	seg := w.SegmentPaths()[0]
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(seg)
	if err != nil {
		f.Fatal(err)
	}
	return dir, data
}

func mustGroupF(w *WAL, id uint64) *Group {
	g, err := w.Group(id)
	if err != nil {
		panic(err)
	}
	return g
}

// FuzzRecover opens a WAL whose segment holds arbitrary bytes (seeded with
// a real one): recovery must either succeed, after which every group reads
// back without panicking, or fail with a *CorruptionError; never panic.
func FuzzRecover(f *testing.F) {
	seedDir, data := fuzzSeedWAL(f)
	f.Add(data)
	f.Add(data[:len(data)-5])
	f.Add(append(append([]byte(nil), data...), 1, 2, 3))
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 0x10
	f.Add(flipped)
	snaps, _ := os.ReadDir(filepath.Join(seedDir, snapDir))
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, snapDir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps {
			b, _ := os.ReadFile(filepath.Join(seedDir, snapDir, s.Name()))
			os.WriteFile(filepath.Join(dir, snapDir, s.Name()), b, 0o644)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, &Options{NoPreallocate: true, NoSync: true})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("recovery failed without a CorruptionError: %v", err)
			}
			return
		}
		defer w.Close()
		for _, id := range w.GroupIDs() {
			readGroup(t, mustGroupF(w, id))
		}
	})
}

// readGroup reads everything a group holds; only corruption may fail.
func readGroup(t *testing.T, g *Group) {
	first, _ := g.FirstIndex()
	last, _ := g.LastIndex()
	for i := first - 1; i <= last; i++ {
		if _, err := g.Term(i); err != nil {
			t.Fatalf("term %d in [%d, %d]: %v", i, first-1, last, err)
		}
	}
	if last >= first {
		if _, err := g.Entries(first, last+1, 1<<30); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("entries: %v", err)
		}
	}
	if _, err := g.Snapshot(); err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("snapshot: %v", err)
	}
	if _, _, err := g.InitialState(); err != nil {
		t.Fatal(err)
	}
	_ = raft.ErrCompacted
}

// FuzzDecodeRecords feeds arbitrary bytes to the frame decoder and to the
// payload decoder of every record it accepts: none may panic, and an
// accepted frame re-encodes to the same bytes.
func FuzzDecodeRecords(f *testing.F) {
	_, data := fuzzSeedWAL(f)
	f.Add(data)
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, data []byte) {
		for off := 0; off < len(data); {
			typ, payload, n, err := decodeFrame(data[off:])
			if err != nil {
				return
			}
			if again := appendFrame(nil, typ, payload); string(again) != string(data[off:off+n]) {
				t.Fatalf("re-encoding differs")
			}
			switch typ {
			case recSegmentHeader:
				decodeSegmentHeader(payload)
			case recBatchEnd:
				decodeBatchEnd(payload)
			case recEntry:
				decodeEntry(payload)
				decodeOp(typ, payload)
			default:
				decodeOp(typ, payload)
			}
			off += n
		}
	})
}

// FuzzRecoverRecords fuzzes the meaning of records rather than their
// bytes: the input is cut into records (a type byte, whose high bit closes
// the batch after the record, a length byte, the payload), each framed
// with a valid checksum after a valid segment header, so that recovery's
// semantic checks (unknown groups, gaps, out-of-range compactions, stale
// snapshots, malformed payloads) are reached. Open must succeed or fail
// with a CorruptionError, never panic.
func FuzzRecoverRecords(f *testing.F) {
	rec := func(typ byte, close bool, payload []byte) []byte {
		if close {
			typ |= 0x80
		}
		return append([]byte{typ, byte(len(payload))}, payload...)
	}
	var ok []byte
	ok = append(ok, rec(byte(recCreate), true, putU64(nil, 1))...)
	ok = append(ok, rec(byte(recEntry), false, appendEntryPayload(nil, 1, &pb.Entry{Index: 1, Term: 1, Data: []byte("a")}))...)
	ok = append(ok, rec(byte(recHardState), true, appendHardState(putU64(nil, 1), pb.HardState{Term: 1, Commit: 1}))...)
	ok = append(ok, rec(byte(recCompact), true, putU64(putU64(putU64(nil, 1), 1), 1))...)
	ok = append(ok, rec(byte(recRemove), true, putU64(nil, 1))...)
	f.Add(ok)
	f.Add(ok[:len(ok)-7])
	header := appendFrame(nil, recSegmentHeader, appendSegmentHeader(nil, &segmentHeader{seq: 1}))
	f.Fuzz(func(t *testing.T, in []byte) {
		seg := append([]byte(nil), header...)
		batchStart, count := len(seg), 0
		for len(in) >= 2 {
			typ, n := in[0], int(in[1])
			in = in[2:]
			n = min(n, len(in))
			seg = appendFrame(seg, recordType(typ&0x7f), in[:n])
			in = in[n:]
			count++
			if typ&0x80 != 0 {
				seg = appendFrame(seg, recBatchEnd, appendBatchEnd(nil, batchEndRecord{start: int64(batchStart), count: uint32(count)}))
				batchStart, count = len(seg), 0
			}
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, &Options{NoPreallocate: true, NoSync: true})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("recovery failed without a CorruptionError: %v", err)
			}
			return
		}
		defer w.Close()
		for _, id := range w.GroupIDs() {
			readGroup(t, mustGroupF(w, id))
		}
	})
}
