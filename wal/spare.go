package wal

import (
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
// Until it is installed the spare keeps its temporary name, so a crash
// leaves a file that recovery deletes like any interrupted creation; and it
// is prepared for one sequence number (the active segment's successor),
// which only rotation changes.

// spareSegment is the spare and the goroutine preparing it.
type spareSegment struct {
	// mu is held while a spare is prepared and while rotation takes it
	// (or, having none, creates the segment itself under the same
	// temporary name): the two never touch that file at once. Lock
	// order: wmu, then spare.mu, then mu.
	mu  sync.Mutex
	seq uint64   // the segment f was prepared for; 0: no spare
	f   *os.File // preallocated and synced, no header; nil: none

	// asked is set (under wmu) once preparation was requested for the
	// active segment, so that commit asks once per segment.
	asked bool

	kick     chan struct{} // buffered 1: requests coalesce
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	// used counts rotations that installed a prepared spare (tests).
	used uint64
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
	next, closed := s.active().seq+1, s.closed
	s.mu.RUnlock()
	if closed || (s.spare.f != nil && s.spare.seq == next) {
		return
	}
	s.dropSpare()
	f, err := openSegmentFile(s.dir, next, s.preallocSize(), true)
	if err != nil {
		return
	}
	s.spare.seq, s.spare.f = next, f
}

// dropSpare closes and deletes the spare, if any. Callers hold spare.mu.
func (s *Storage) dropSpare() {
	if s.spare.f == nil {
		return
	}
	s.spare.f.Close()
	os.Remove(filepath.Join(s.dir, segmentTmpName(s.spare.seq)))
	s.spare.seq, s.spare.f = 0, nil
}

// newSegment makes segment seq, holding a header with cp, from the spare
// if one was prepared for it, else from scratch. Callers hold wmu.
func (s *Storage) newSegment(seq uint64, cp checkpoint) (*segment, error) {
	s.spare.mu.Lock()
	defer s.spare.mu.Unlock()
	s.spare.asked = false
	if s.spare.f == nil || s.spare.seq != seq {
		s.dropSpare()
		return createSegment(s.dir, seq, cp, s.preallocSize())
	}
	f := s.spare.f
	s.spare.seq, s.spare.f = 0, nil
	s.spare.used++
	// The allocation is durable already: a data sync covers the header.
	return installSegment(s.dir, seq, f, cp, func() error { return syncData(f) })
}

// stopSpare ends the preparing goroutine and deletes the spare. Close
// calls it before it takes wmu.
func (s *Storage) stopSpare() {
	s.spare.stopOnce.Do(func() { close(s.spare.stop) })
	<-s.spare.done
	s.spare.mu.Lock()
	s.dropSpare()
	s.spare.mu.Unlock()
}
