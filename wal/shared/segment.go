package shared

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/raftkit/raft/wal"
)

// Segments are named by their sequence number in 16 hex digits, so that
// lexical order is creation order.
const (
	segmentExt = ".swal"
	tmpSuffix  = ".tmp"
	snapDir    = "snap"
	lockFile   = "LOCK"
)

// maxSegmentSeq keeps sequence numbers within the uint32 of entryLoc.
const maxSegmentSeq = 1<<32 - 1

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil && seq > 0 && seq <= maxSegmentSeq
}

// segment is one file of the log, open from recovery (or creation) until it
// is deleted or the WAL closed; reads and writes use positioned I/O.
type segment struct {
	seq  uint64
	path string
	f    *os.File
	// size is where the next record goes: the end of valid data. Beyond it
	// the file holds preallocated zeros (active segment) or nothing.
	size int64
	// dataStart is the end of the header.
	dataStart int64
	// prewritten says the blocks past size hold written zeros (a spare,
	// spare.go), not unwritten preallocated space.
	prewritten bool
}

// createSegment makes segment seq in dir holding only its header, durably
// (temporary name, sync, rename, directory sync), so a crash leaves either
// no segment or a complete header.
func createSegment(dir string, seq uint64, header []byte, prealloc int64, sy syncer) (*segment, error) {
	if seq > maxSegmentSeq {
		return nil, fmt.Errorf("shared wal: segment sequence numbers exhausted")
	}
	path := filepath.Join(dir, segmentName(seq))
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("shared wal: creating segment: %w", err)
	}
	fail := func(err error) (*segment, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("shared wal: creating segment %s: %w", path, err)
	}
	if _, err := f.WriteAt(header, 0); err != nil {
		return fail(err)
	}
	if prealloc > int64(len(header)) {
		if err := wal.Preallocate(f, prealloc); err != nil {
			return fail(err)
		}
	}
	if err := sy.file(f); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := sy.dir(dir); err != nil {
		return fail(err)
	}
	return &segment{seq: seq, path: path, f: f, size: int64(len(header)), dataStart: int64(len(header))}, nil
}

// seal cuts a segment that takes no more writes to its data and syncs it,
// so recovery finds it ending exactly at its last record: zeros in a sealed
// segment are damage, not free space.
func (sg *segment) seal(sy syncer) error {
	if err := sg.f.Truncate(sg.size); err != nil {
		return fmt.Errorf("shared wal: sealing segment %s: %w", sg.path, err)
	}
	if err := sy.file(sg.f); err != nil {
		return fmt.Errorf("shared wal: syncing segment %s: %w", sg.path, err)
	}
	return nil
}

// readRecord reads the record at off, which must lie within the segment's
// valid data, and returns its type and payload.
func (sg *segment) readRecord(off int64) (recordType, []byte, error) {
	corrupt := func(reason string) (recordType, []byte, error) {
		return 0, nil, &CorruptionError{File: sg.path, Offset: off, Reason: reason}
	}
	if off+frameHeaderSize > sg.size {
		return corrupt("record past the end of the segment")
	}
	buf := make([]byte, min(256, sg.size-off))
	if _, err := sg.f.ReadAt(buf, off); err != nil {
		return 0, nil, fmt.Errorf("shared wal: reading %s: %w", sg.path, err)
	}
	n := int64(uint32(buf[0]) | uint32(buf[1])<<8 | uint32(buf[2])<<16 | uint32(buf[3])<<24)
	if off+frameHeaderSize+n > sg.size {
		return corrupt("record extends past the end of the segment")
	}
	if total := frameHeaderSize + n; total > int64(len(buf)) {
		buf = append(buf, make([]byte, total-int64(len(buf)))...)
		if _, err := sg.f.ReadAt(buf[256:], off+256); err != nil {
			return 0, nil, fmt.Errorf("shared wal: reading %s: %w", sg.path, err)
		}
	}
	typ, payload, _, err := decodeFrame(buf[:frameHeaderSize+n])
	if err != nil {
		return corrupt(err.Error())
	}
	return typ, payload, nil
}

// dirListing is what a WAL directory holds.
type dirListing struct {
	segs  []uint64 // sorted
	snaps []snapName
	tmps  []string // paths of leftovers of interrupted writes
}

func listDir(dir string) (dirListing, error) {
	var l dirListing
	ents, err := os.ReadDir(dir)
	if err != nil {
		return l, fmt.Errorf("shared wal: reading directory: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			l.tmps = append(l.tmps, filepath.Join(dir, name))
		case strings.HasSuffix(name, segmentExt):
			seq, ok := parseSegmentName(name)
			if !ok {
				return l, fmt.Errorf("shared wal: unexpected file %s in %s", name, dir)
			}
			l.segs = append(l.segs, seq)
		}
	}
	sort.Slice(l.segs, func(a, b int) bool { return l.segs[a] < l.segs[b] })
	ents, err = os.ReadDir(filepath.Join(dir, snapDir))
	if err != nil && !os.IsNotExist(err) {
		return l, fmt.Errorf("shared wal: reading snapshot directory: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			l.tmps = append(l.tmps, filepath.Join(dir, snapDir, name))
			continue
		}
		sn, ok := parseSnapName(name)
		if !ok {
			return l, fmt.Errorf("shared wal: unexpected file %s in %s", name, filepath.Join(dir, snapDir))
		}
		l.snaps = append(l.snaps, sn)
	}
	return l, nil
}

// syncer makes files and directory changes durable, or, under
// Options.NoSync, does nothing.
type syncer struct{ off bool }

func (s syncer) file(f *os.File) error {
	if s.off {
		return nil
	}
	return f.Sync()
}

func (s syncer) data(f *os.File) error {
	if s.off {
		return nil
	}
	return wal.SyncData(f)
}

func (s syncer) dir(path string) error {
	if s.off {
		return nil
	}
	return wal.SyncDir(path)
}
