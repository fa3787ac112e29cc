package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Segment rotation used to create the next segment under the write lock:
// create the file, fallocate it, fsync, rename, fsync the directory. The
// fallocate and the fsync of the allocation it made are the slow part (the
// kernel allocates and journals the extents of a whole segment: several
// milliseconds for 64 MiB on ext4), and every writer, the append thread
// included, waited them out. So the next segment's file is prepared ahead,
// off the lock, once the active segment is half full: the spare. Rotation
// then only writes the header into it, data-syncs it, renames it and syncs
// the directory.
//
// The spare is created under its segment's final name, and the directory
// is synced then, off the lock, so that rotation renames nothing and syncs
// no directory: it writes the header into the spare and data-syncs it,
// before any batch goes there. A crash can therefore leave, as the last
// segment, a spare that holds no header or a torn one (any mix of the
// header's bytes and zeros) and zeros after it. Recovery recognises it by
// exactly that: the header it would hold is the one rotation writes from
// the state the segments before it replay to (sealed and synced before the
// header is written), so every non-zero byte must be that header's byte at
// the same offset and every byte after the header zero, up to
// spareClearSize at least (a spare made of a recycled segment, recycle.go,
// holds that segment's bytes past it, but no record of its own). Such a
// file is an unused spare and is deleted; anything else in a header-less
// last segment is reported as corruption. The spare is prepared for one sequence number
// (the active segment's successor), which only rotation changes.

// spareSegment is the spare and the goroutine preparing it.
type spareSegment struct {
	// mu is held while a spare is prepared and while rotation takes it
	// (or, having none, creates the segment itself under the same
	// temporary name): the two never touch that file at once. Lock
	// order: wmu, then spare.mu, then mu.
	mu  sync.Mutex
	seq uint64   // the segment f was prepared for; 0: no spare
	f   *os.File // preallocated and synced, no header; nil: none
	// started is the last segment newSegment made. Rotation adds it to
	// segs only after newSegment returns, so until then the active
	// segment's successor is a segment in use, not a spare's to take:
	// spares are prepared past started.
	started uint64

	// asked is set (under wmu) once preparation was requested for the
	// active segment, so that commit asks once per segment.
	asked bool

	// recycled says f is a recycled segment's file: past spareClearSize
	// it holds that segment's bytes, not zeros.
	recycled bool
	// written is how far f's blocks are written (segment.written): a
	// recycled file's old size, 0 for a new file.
	written int64
	// pool holds the files of compacted segments kept to become spares
	// (recycle.go), oldest first, under temporary names.
	pool []recycledFile

	kick     chan struct{} // buffered 1: requests coalesce
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	// used counts rotations that installed a prepared spare (tests).
	used uint64
	// reused counts spares made from recycled files (tests).
	reused uint64
}

// startSpare starts the goroutine preparing spares. Open calls it.
func (s *Storage) startSpare() {
	s.spare.kick = make(chan struct{}, 1)
	s.spare.stop = make(chan struct{})
	s.spare.done = make(chan struct{})
	go s.spareLoop()
}

func (s *Storage) spareLoop() {
	defer close(s.spare.done)
	for {
		select {
		case <-s.spare.kick:
			s.prepareSpare()
		case <-s.spare.stop:
			return
		}
	}
}

// askSpare requests a spare for the active segment's successor once the
// active segment sg is half full. Callers hold wmu.
func (s *Storage) askSpare(sg *segment) {
	if s.spare.asked || s.noSpare || sg.size < s.opts.SegmentSize/2 {
		return
	}
	s.spare.asked = true
	select {
	case s.spare.kick <- struct{}{}:
	default:
	}
}

// prepareSpare creates the spare for the active segment's successor, unless
// there is one. A failure leaves no spare: rotation then creates the segment
// itself and reports the error if it fails again.
func (s *Storage) prepareSpare() {
	s.spare.mu.Lock()
	defer s.spare.mu.Unlock()
	s.mu.RLock()
	next, closed := max(s.active().seq, s.spare.started)+1, s.closed
	s.mu.RUnlock()
	if closed || (s.spare.f != nil && s.spare.seq == next) {
		return
	}
	s.dropSpare()
	path := filepath.Join(s.dir, segmentName(next))
	f, written := s.reuseFile(path)
	recycled := f != nil
	if f == nil {
		var err error
		f, err = openSegmentFile(path, s.preallocSize(), true /* sync */, true /* exclusive */)
		if err != nil {
			return
		}
		recycled = false
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		os.Remove(path)
		return
	}
	s.spare.seq, s.spare.f, s.spare.recycled, s.spare.written = next, f, recycled, written
}

// dropSpare puts the spare, if any, back into the pool of recycled files
// (recycle.go) or, with the pool full, closes and deletes it. Callers hold
// spare.mu. The spare carries a segment's name, so it is renamed or
// deleted only while it is past the active segment, never once its
// sequence number is in use.
func (s *Storage) dropSpare() {
	if s.spare.f == nil {
		return
	}
	s.mu.RLock()
	unused := s.spare.seq > max(s.active().seq, s.spare.started)
	s.mu.RUnlock()
	if !unused || !s.poolSpare() {
		s.spare.f.Close()
		if unused {
			os.Remove(filepath.Join(s.dir, segmentName(s.spare.seq)))
		}
	}
	s.spare.seq, s.spare.f, s.spare.recycled, s.spare.written = 0, nil, false, 0
}

// newSegment makes segment seq, holding a header with cp, from the spare
// if one was prepared for it, else from scratch. Callers hold wmu.
func (s *Storage) newSegment(seq uint64, cp checkpoint) (*segment, error) {
	s.spare.mu.Lock()
	defer s.spare.mu.Unlock()
	s.spare.asked = false
	hdr := segmentHeaderBytes(seq, cp)
	// A recycled spare's cleared start must hold the header and the
	// start of the record after it: recovery expects zeros there in an
	// unused spare, and finds the first batch there in a used one.
	if s.spare.f == nil || s.spare.seq != seq || (s.spare.recycled && len(hdr)+frameHeaderSize > spareClearSize) {
		s.dropSpare()
		s.spare.started = seq
		return createSegment(s.dir, seq, cp, s.preallocSize())
	}
	s.spare.started = seq
	f, written := s.spare.f, max(s.spare.written, int64(len(hdr)))
	s.spare.seq, s.spare.f, s.spare.recycled, s.spare.written = 0, nil, false, 0
	s.spare.used++
	return s.beginSpareSegment(seq, f, hdr, written)
}

// beginSpareSegment makes the spare f segment seq by writing its header hdr,
// durably before any batch follows it (see above). The file's allocation and
// name are durable already, so a data sync of the header is all it costs.
// Its blocks are written up to written (segment.written). On error the
// spare is closed and deleted.
func (s *Storage) beginSpareSegment(seq uint64, f *os.File, hdr []byte, written int64) (*segment, error) {
	path := filepath.Join(s.dir, segmentName(seq))
	_, err := f.WriteAt(hdr, 0)
	if err == nil {
		err = syncData(f)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("wal: starting segment %s: %w", path, err)
	}
	return &segment{seq: seq, path: path, f: f, size: int64(len(hdr)), dataStart: int64(len(hdr)), written: written}, nil
}

// stopSpare ends the preparing goroutine and deletes the spare. Close
// calls it before it takes wmu.
func (s *Storage) stopSpare() {
	s.spare.stopOnce.Do(func() { close(s.spare.stop) })
	<-s.spare.done
	s.spare.mu.Lock()
	s.dropSpare()
	s.closePool()
	s.spare.mu.Unlock()
}
