package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Segments are named by their sequence number in 16 hex digits, so that
// lexical order is creation order.
const segmentExt = ".wal"

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

// parseSegmentName returns the sequence number in a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil && seq > 0
}

// segment is one file of the log. The file stays open from recovery (or
// creation) until the segment is deleted or the Storage closed; reads and
// writes use positioned I/O on it, so they need no shared file offset.
type segment struct {
	seq  uint64
	path string
	f    *os.File
	// size is where the next record goes: the end of valid data. Beyond
	// it the file holds preallocated zeros (active segment) or nothing.
	size int64
	// dataStart is the end of the header: a segment with size == dataStart
	// holds no batch yet.
	dataStart int64
	// written is how far from the start the file's blocks are known to be
	// written (data, zeros, or a recycled file's old bytes) rather than
	// left unwritten by fallocate; the prewriter (prewrite.go) starts
	// there. Zero means the end of the data.
	written int64
}

// createSegment makes segment seq in dir holding only its header, durably:
// it is written under a temporary name, synced, renamed and the directory
// synced, so a crash leaves either no segment or a complete header.
func createSegment(dir string, seq uint64, cp checkpoint, prealloc int64) (*segment, error) {
	tmp := filepath.Join(dir, segmentTmpName(seq))
	f, err := openSegmentFile(tmp, prealloc, false /* sync */, false /* exclusive */)
	if err != nil {
		return nil, err
	}
	return installSegment(dir, seq, f, cp, f.Sync)
}

// openSegmentFile creates the file at path, preallocated to prealloc bytes
// and, if sync is set, with that allocation durable, so that starting a
// segment in it later costs a data sync of its header only. A file already
// at path is truncated, unless exclusive is set: then it is an error (a
// spare, which carries a segment's name, must never replace a segment). On
// error no file was created.
func openSegmentFile(path string, prealloc int64, sync, exclusive bool) (*os.File, error) {
	flag := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if exclusive {
		flag = os.O_RDWR | os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("wal: creating segment: %w", err)
	}
	if prealloc > 0 {
		err = preallocate(f, prealloc)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("wal: creating segment %s: %w", path, err)
	}
	return f, nil
}

// installSegment writes the header into f, the temporary file of segment
// seq, makes it durable with syncFile, renames the file to the segment's
// name and syncs the directory. On error f is closed and removed.
func installSegment(dir string, seq uint64, f *os.File, cp checkpoint, syncFile func() error) (*segment, error) {
	path := filepath.Join(dir, segmentName(seq))
	tmp := filepath.Join(dir, segmentTmpName(seq))
	fail := func(err error) (*segment, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("wal: creating segment %s: %w", path, err)
	}
	hdr := segmentHeaderBytes(seq, cp)
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fail(err)
	}
	if err := syncFile(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return &segment{seq: seq, path: path, f: f, size: int64(len(hdr)), dataStart: int64(len(hdr)), written: int64(len(hdr))}, nil
}

// segmentHeaderBytes is the framed header record of segment seq starting
// from checkpoint cp.
func segmentHeaderBytes(seq uint64, cp checkpoint) []byte {
	return appendFrame(nil, recSegmentHeader, appendSegmentHeaderPayload(nil, segmentHeader{seq: seq, cp: cp}))
}

// segmentTmpName is the name of segment seq's file until it holds its
// header: recovery deletes such files (an interrupted creation, or the
// spare segment of a crashed process).
func segmentTmpName(seq uint64) string { return segmentName(seq) + tmpSuffix }

// seal cuts a segment that will take no more writes to its data and syncs
// it with its size, so that recovery finds it ending exactly at its last
// record: zeros in a sealed segment are then damage, not free space.
func (sg *segment) seal() error {
	if err := sg.f.Truncate(sg.size); err != nil {
		return fmt.Errorf("wal: sealing segment %s: %w", sg.path, err)
	}
	if err := sg.f.Sync(); err != nil {
		return fmt.Errorf("wal: syncing segment %s: %w", sg.path, err)
	}
	return nil
}

// listDir sorts the names in dir into segments (by sequence number),
// snapshot files and leftovers of interrupted writes.
func listDir(dir string) (segs []uint64, snaps []snapName, tmps []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("wal: reading directory: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			tmps = append(tmps, name)
		case strings.HasSuffix(name, segmentExt):
			seq, ok := parseSegmentName(name)
			if !ok {
				return nil, nil, nil, fmt.Errorf("wal: unexpected file %s in %s", name, dir)
			}
			segs = append(segs, seq)
		case strings.HasSuffix(name, snapExt):
			sn, ok := parseSnapName(name)
			if !ok {
				return nil, nil, nil, fmt.Errorf("wal: unexpected file %s in %s", name, dir)
			}
			snaps = append(snaps, sn)
		}
	}
	sort.Slice(segs, func(a, b int) bool { return segs[a] < segs[b] })
	return segs, snaps, tmps, nil
}

const tmpSuffix = ".tmp"
