package shared

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pb "github.com/raftkit/raft/raftpb"
)

// A group's snapshot lives in its own file under snap/, named after the
// group, term and index, holding one recSnapshotFile record whose payload
// is the group ID followed by the marshaled raftpb.Snapshot. The log's
// snapshot record carries the payload's checksum and length, so a stale or
// damaged file is never taken for the current one.
const snapExt = ".snap"

type snapName struct{ group, term, index uint64 }

func (n snapName) String() string {
	return fmt.Sprintf("%016x-%016x-%016x%s", n.group, n.term, n.index, snapExt)
}

func parseSnapName(name string) (snapName, bool) {
	base, ok := strings.CutSuffix(name, snapExt)
	parts := strings.Split(base, "-")
	if !ok || len(parts) != 3 {
		return snapName{}, false
	}
	var v [3]uint64
	for k, p := range parts {
		n, err := strconv.ParseUint(p, 16, 64)
		if err != nil || len(p) != 16 {
			return snapName{}, false
		}
		v[k] = n
	}
	return snapName{v[0], v[1], v[2]}, true
}

func snapNameOf(group uint64, meta pb.SnapshotMetadata) snapName {
	return snapName{group, meta.Term, meta.Index}
}

func snapPath(dir string, n snapName) string { return filepath.Join(dir, snapDir, n.String()) }

// writeSnapshotFile stores a group's snapshot durably and returns the
// reference the log records for it.
func writeSnapshotFile(dir string, group uint64, snap *pb.Snapshot, sy syncer) (snapRef, error) {
	payload := make([]byte, 8, 8+snap.Size())
	binary.LittleEndian.PutUint64(payload, group)
	body, err := snap.Marshal()
	if err != nil {
		return snapRef{}, fmt.Errorf("shared wal: marshaling snapshot: %w", err)
	}
	payload = append(payload, body...)
	if len(payload) > maxBatch {
		return snapRef{}, fmt.Errorf("shared wal: snapshot of %d bytes exceeds the limit of %d", len(payload), maxBatch)
	}
	if err := os.MkdirAll(filepath.Join(dir, snapDir), 0o755); err != nil {
		return snapRef{}, fmt.Errorf("shared wal: creating snapshot directory: %w", err)
	}
	path := snapPath(dir, snapNameOf(group, snap.Metadata))
	tmp := path + tmpSuffix
	if err := writeFileSynced(tmp, appendFrame(nil, recSnapshotFile, payload), sy); err != nil {
		os.Remove(tmp)
		return snapRef{}, fmt.Errorf("shared wal: writing snapshot file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return snapRef{}, fmt.Errorf("shared wal: installing snapshot file: %w", err)
	}
	if err := sy.dir(filepath.Dir(path)); err != nil {
		return snapRef{}, fmt.Errorf("shared wal: syncing snapshot directory: %w", err)
	}
	return snapRef{meta: snap.Metadata, dataCRC: crc32.Checksum(payload, castagnoli), dataLen: uint64(len(payload))}, nil
}

func writeFileSynced(path string, data []byte, sy syncer) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := sy.file(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkSnapshotFile checks cheaply, at recovery, that ref's file exists
// with the recorded size; the checksum is verified when it is read.
func checkSnapshotFile(dir string, group uint64, ref snapRef) error {
	path := snapPath(dir, snapNameOf(group, ref.meta))
	fi, err := os.Stat(path)
	if err != nil {
		return &CorruptionError{File: path, Reason: fmt.Sprintf("group %d: snapshot at index %d: %v", group, ref.meta.Index, err)}
	}
	if fi.Size() != int64(frameHeaderSize+ref.dataLen) {
		return &CorruptionError{File: path, Reason: fmt.Sprintf("group %d: snapshot file has %d bytes, the log recorded %d", group, fi.Size(), frameHeaderSize+ref.dataLen)}
	}
	return nil
}

// readSnapshotFile loads and checks the snapshot ref points to.
func readSnapshotFile(dir string, group uint64, ref snapRef) (pb.Snapshot, error) {
	path := snapPath(dir, snapNameOf(group, ref.meta))
	buf, err := os.ReadFile(path)
	if err != nil {
		return pb.Snapshot{}, fmt.Errorf("shared wal: reading snapshot of group %d at index %d: %w", group, ref.meta.Index, err)
	}
	corrupt := func(off int64, reason string) (pb.Snapshot, error) {
		return pb.Snapshot{}, &CorruptionError{File: path, Offset: off, Reason: reason}
	}
	typ, payload, size, err := decodeFrame(buf)
	switch {
	case err != nil:
		return corrupt(0, err.Error())
	case typ != recSnapshotFile || size != len(buf) || len(payload) < 8:
		return corrupt(0, "not a snapshot file")
	case uint64(len(payload)) != ref.dataLen || crc32.Checksum(payload, castagnoli) != ref.dataCRC:
		return corrupt(0, "snapshot does not match the one the log recorded")
	case binary.LittleEndian.Uint64(payload) != group:
		return corrupt(frameHeaderSize, "snapshot of another group")
	}
	var snap pb.Snapshot
	if err := snap.Unmarshal(payload[8:]); err != nil {
		return corrupt(frameHeaderSize+8, err.Error())
	}
	if !sameMetadata(snap.Metadata, ref.meta) {
		return corrupt(frameHeaderSize+8, "snapshot metadata differs from the log's")
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
