package wal

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pb "github.com/raftkit/raft/raftpb"
)

// A snapshot file holds one record of type recSnapshotFile whose payload is
// the marshaled raftpb.Snapshot. It is named after the snapshot's term and
// index; the log's snapshot record names it by those and carries the
// payload's checksum and length, so a file left over from an older
// snapshot, or a damaged one, is never taken for the current one.
const snapExt = ".snap"

type snapName struct{ term, index uint64 }

func (n snapName) String() string { return fmt.Sprintf("%016x-%016x%s", n.term, n.index, snapExt) }

func parseSnapName(name string) (snapName, bool) {
	base, ok := strings.CutSuffix(name, snapExt)
	if !ok || len(base) != 33 || base[16] != '-' {
		return snapName{}, false
	}
	term, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	return snapName{term, index}, err1 == nil && err2 == nil
}

func snapNameOf(meta pb.SnapshotMetadata) snapName { return snapName{meta.Term, meta.Index} }

// writeSnapshotFile stores snap durably: temp file, sync, rename, sync of
// the directory. It returns the reference the log records for it.
func writeSnapshotFile(dir string, snap *pb.Snapshot) (snapRef, error) {
	payload, err := snap.Marshal()
	if err != nil {
		return snapRef{}, fmt.Errorf("wal: marshaling snapshot: %w", err)
	}
	if uint64(len(payload)) > maxPayload {
		return snapRef{}, fmt.Errorf("wal: snapshot of %d bytes exceeds the limit of %d", len(payload), uint64(maxPayload))
	}
	path := filepath.Join(dir, snapNameOf(snap.Metadata).String())
	tmp := path + tmpSuffix
	if err := writeFileSynced(tmp, appendFrame(nil, recSnapshotFile, payload)); err != nil {
		os.Remove(tmp)
		return snapRef{}, fmt.Errorf("wal: writing snapshot file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return snapRef{}, fmt.Errorf("wal: installing snapshot file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return snapRef{}, fmt.Errorf("wal: syncing directory: %w", err)
	}
	return snapRef{
		meta:    snap.Metadata,
		dataCRC: crc32.Checksum(payload, castagnoli),
		dataLen: uint64(len(payload)),
	}, nil
}

func writeFileSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readSnapshotFile loads and checks the snapshot ref points to.
func readSnapshotFile(dir string, ref snapRef) (pb.Snapshot, error) {
	path := filepath.Join(dir, snapNameOf(ref.meta).String())
	buf, err := os.ReadFile(path)
	if err != nil {
		return pb.Snapshot{}, fmt.Errorf("wal: reading snapshot at index %d: %w", ref.meta.Index, err)
	}
	typ, payload, size, err := decodeFrame(buf)
	switch {
	case err != nil:
		return pb.Snapshot{}, &CorruptionError{File: path, Offset: 0, Reason: err.Error()}
	case typ != recSnapshotFile || size != len(buf):
		return pb.Snapshot{}, &CorruptionError{File: path, Offset: 0, Reason: "not a snapshot file"}
	case uint64(len(payload)) != ref.dataLen || crc32.Checksum(payload, castagnoli) != ref.dataCRC:
		return pb.Snapshot{}, &CorruptionError{File: path, Offset: 0, Reason: "snapshot does not match the one the log recorded"}
	}
	var snap pb.Snapshot
	if err := snap.Unmarshal(payload); err != nil {
		return pb.Snapshot{}, &CorruptionError{File: path, Offset: frameHeaderSize, Reason: err.Error()}
	}
	if !sameMetadata(snap.Metadata, ref.meta) {
		return pb.Snapshot{}, &CorruptionError{File: path, Offset: frameHeaderSize, Reason: "snapshot metadata differs from the log's"}
	}
	return snap, nil
}

// sameMetadata compares metadata by encoding: decoding may turn empty lists
// into nil ones, which deep equality would tell apart.
func sameMetadata(a, b pb.SnapshotMetadata) bool {
	ea, err1 := a.Marshal()
	eb, err2 := b.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}

// readInlineSnapshot loads the current snapshot from the record that holds
// its data (logState.snapSeg), which replay has checked already; it has
// readSnapshotFile's signature so that recovery can pick either.
func (s *Storage) readInlineSnapshot(_ string, ref snapRef) (pb.Snapshot, error) {
	rd := segReader{sg: s.st.snapSeg, pos: s.st.snapOff}
	typ, payload, off, err := rd.next()
	if err != nil {
		return pb.Snapshot{}, err
	}
	r, err := decodeSnapshotRecord(payload)
	if err == nil && (typ != recSnapshot || !r.inline || r.ref.meta.Index != ref.meta.Index) {
		err = errors.New("not the record of the current snapshot")
	}
	if err != nil {
		return pb.Snapshot{}, &CorruptionError{File: rd.sg.path, Offset: off, Reason: err.Error()}
	}
	snap := pb.Snapshot{Metadata: ref.meta}
	if len(r.data) > 0 {
		snap.Data = append([]byte(nil), r.data...)
	}
	return snap, nil
}
