package shared

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/raftkit/raft/wal"
)

// Appends into blocks that fallocate left unwritten make every fdatasync of
// the active segment commit an ext4 journal transaction: the write converts
// the extent from unwritten to written, which is metadata. And rotation
// used to create, fallocate and sync the next segment under the write lock.
// So the next segment is prepared ahead, off the lock, by a goroutine: the
// spare, a file whose blocks are written with zeros and synced. Rotation
// writes the header at its start, data-syncs it (no metadata changes: the
// blocks and the size are there already), renames it to its segment name
// and syncs the directory. Batches appended to it then only overwrite
// zeros, and their fdatasyncs write data, with no journal commit.
//
// The first segment of a new WAL is created as before (fallocated), so Open
// does not wait for a segment of zeros; once the active segment holds
// spareAskBytes of data a spare is asked for, and a segment that is not
// pre-written (the first one, or the active one after a restart, whose
// tail cannot be told from unwritten space) is sealed early as soon as the
// spare is ready. A WAL that writes little (most tests) never asks.
//
// The spare is always a temporary file, spare-<n>.tmp, until rotation renames
// it: recovery deletes temporary files, so a crash at any step (the zeros
// half written, the header written into it but the rename not durable)
// leaves the log as it was, and a build without spares (which deletes
// temporary files too) reads the directory the same. Nothing of the format
// changes. Close deletes the spare: the next Open prepares one again.
//
// Compacted segments are recycled (gc.go): instead of being deleted, one
// becomes the next spare, renamed to a spare's name and zeroed whole before it
// is synced and used, so no record of the segment it was survives into the
// new one; its blocks are allocated and written already, so neither the
// unlink (which frees extents in the journal; package wal measured it
// stalling the fsyncs that share that commit) nor a new allocation
// happens.
//
// Each spare gets a name of its own, so that the goroutine never opens the
// file rotation is installing.
func spareName(n uint64) string { return fmt.Sprintf("spare-%d%s", n, tmpSuffix) }

// spareAskBytes is how much data a new WAL's first segment holds when a
// spare is asked for (or a quarter of the segment size, if less).
const spareAskBytes = 1 << 20

// spareChunk is the size of the zero writes, each written back before the
// next; spareSyncEvery paces them with data syncs instead where
// sync_file_range fails, so that writeback goes out in pieces either way
// instead of one burst that the group commit's fsyncs would queue behind.
//
// spareRest paces the writes themselves: after each chunk (and its sync,
// if any) the goroutine rests spareRest times as long as that took, so
// that the zeros take at most a quarter of the device's time and a group
// commit's fdatasync waits behind one chunk at most. Unpaced, the 68 MiB of
// a first spare, written while a new host took its first megabyte of
// writes, held every fsync for a second: raftkv's sharded members at 4000
// writes/s (open loop) saw p99 latencies of 220-260 ms in that second,
// against 47-60 ms for one group. A spare is asked for when the active
// segment is half full, so a slower spare is still ready in time unless
// the log is written at over a quarter of the disk's speed; rotation then
// makes the segment itself, as without spares.
const (
	spareChunk     = 256 << 10
	spareSyncEvery = 8 << 20
	spareRest      = 3
)

// spareFile is the spare and the goroutine preparing it.
type spareFile struct {
	mu sync.Mutex
	// f is the ready spare, at fPath: zeros, synced. nil: none.
	f     *os.File
	fPath string
	// recycled is a compacted segment's file waiting to be zeroed into the
	// next spare, at recycledPath. At most one of f and recycled is set.
	recycled     *os.File
	recycledPath string
	// names numbers the spares' file names.
	names uint64
	// wanted is set when the goroutine is kicked and cleared when it
	// starts, which sets busy until it is done: wanted || busy says a
	// preparation is pending (sparePending).
	wanted, busy bool
	// asked is set (under wmu) once a spare was asked for the active
	// segment, so commit asks once per segment.
	asked bool

	kick chan struct{} // buffered 1: requests coalesce
	stop chan struct{}
	done chan struct{}

	// hook, if set (tests only), runs at each step of preparation and
	// rotation with its name; a test copies the directory there to get
	// the image a crash at that point leaves.
	hook func(step string)
	// restHook, if set (tests only), is called instead of each rest
	// between chunks of zeros, with its length.
	restHook func(d time.Duration)

	prepared, used, recycledN, failed uint64 // counters, under mu
}

// spareOn says whether this WAL prepares spares: not without fsyncs (there
// is no journal commit to save) nor without preallocation (the caller
// asked for files that grow as written).
func (w *WAL) spareOn() bool { return !w.opts.NoSync && !w.opts.NoPreallocate }

// startSpare starts the goroutine preparing spares. Open calls it.
func (w *WAL) startSpare() {
	if !w.spareOn() {
		return
	}
	s := &w.spare
	s.kick = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.kick:
				w.prepareSpare()
			case <-s.stop:
				return
			}
		}
	}()
}

// stopSpare stops the goroutine and deletes the spare: Close calls it.
func (w *WAL) stopSpare() {
	s := &w.spare
	if s.stop == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.stop = nil
	if s.f != nil {
		s.f.Close()
		os.Remove(s.fPath)
	}
	if s.recycled != nil {
		s.recycled.Close()
		os.Remove(s.recycledPath)
	}
	s.f, s.recycled = nil, nil
}

// step runs the test hook.
func (s *spareFile) step(name string) {
	if s.hook != nil {
		s.hook(name)
	}
}

// spareAskAt is how much data sg holds when the spare after it is asked
// for: a pre-written segment asks at half full, which leaves the goroutine
// half a segment's time and spaces the zero writes out; one that is not
// (a new WAL's first) asks early, to be left early.
func (w *WAL) spareAskAt(sg *segment) int64 {
	if sg.prewritten {
		return w.opts.SegmentSize / 2
	}
	return min(spareAskBytes, w.opts.SegmentSize/4)
}

// askSpare asks for a spare once the active segment holds enough data.
// Callers hold wmu.
func (w *WAL) askSpare(sg *segment) {
	s := &w.spare
	if s.asked || s.kick == nil || sg.size-sg.dataStart < w.spareAskAt(sg) {
		return
	}
	s.asked = true
	s.mu.Lock()
	s.kickLocked()
	s.mu.Unlock()
}

// kickLocked wakes the goroutine. Callers hold s.mu.
func (s *spareFile) kickLocked() {
	s.wanted = true
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sparePending says whether the goroutine has a preparation to do or in
// progress.
func (w *WAL) sparePending() bool {
	w.spare.mu.Lock()
	defer w.spare.mu.Unlock()
	return w.spare.wanted || w.spare.busy
}

// rotateEarly says whether the active segment sg should be sealed before
// it is full: it is not pre-written and a spare is ready. Callers hold wmu.
func (w *WAL) rotateEarly(sg *segment) bool {
	return !sg.prewritten && w.spare.kick != nil && w.spareReady()
}

// spareReady says whether a spare is ready to take.
func (w *WAL) spareReady() bool {
	w.spare.mu.Lock()
	defer w.spare.mu.Unlock()
	return w.spare.f != nil
}

// stopping says whether Close asked the goroutine to stop.
func (s *spareFile) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// prepareSpare makes the spare: a recycled segment's file if there is one,
// else a new file, written with zeros over a whole segment and synced. A
// failure, or Close, leaves no spare: rotation then creates the segment
// itself (and reports the error if that fails too).
func (w *WAL) prepareSpare() {
	s := &w.spare
	defer s.step("spare-done")
	s.mu.Lock()
	s.wanted = false
	if s.f != nil {
		s.mu.Unlock()
		return
	}
	f, path, recycled := s.recycled, s.recycledPath, s.recycled != nil
	if !recycled {
		s.names++
		path = filepath.Join(w.dir, spareName(s.names))
	}
	s.recycled, s.busy = nil, true
	s.mu.Unlock()
	err := w.zeroSpare(&f, path)
	s.mu.Lock()
	s.busy = false
	if err != nil {
		if f != nil {
			f.Close()
			os.Remove(path)
		}
		if err != ErrClosed {
			s.failed++
		}
	} else {
		s.f, s.fPath = f, path
		s.prepared++
		if recycled {
			s.recycledN++
		}
	}
	s.mu.Unlock()
}

// zeroSpare writes zeros over a whole segment of *f, creating the file at
// path if *f is nil, then syncs it (size and allocation included).
func (w *WAL) zeroSpare(f **os.File, path string) error {
	s := &w.spare
	size := w.spareSize()
	if *f == nil {
		nf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		*f = nf
	} else if err := (*f).Truncate(min(size, sizeOf(*f))); err != nil {
		return err
	}
	// Allocated in one piece first: the zeros then fill it in place.
	if err := wal.Preallocate(*f, size); err != nil {
		return err
	}
	s.step("spare-start")
	if err := w.writeZeros(*f, size); err != nil {
		return err
	}
	if err := (*f).Sync(); err != nil {
		return err
	}
	s.step("spare-ready")
	return nil
}

// writeZeros writes zeros over [0, size) of f through the page cache, and
// writes each chunk back before the next (sync_file_range: data only, no
// journal commit), so that writeback goes to the device a chunk at a time,
// as the group commit's fdatasyncs can stand. It stops with ErrClosed
// when Close asks.
//
// The zeros stay cached, clean, and that is the point: an append that
// starts a page of the segment then overwrites a cached page. With the
// zeros written around the cache (O_DIRECT, as before), the pages were
// not cached, and the first append into each one read it from the disk
// first, inside the write: BenchmarkSyncedAppend with 4 KiB entries paid
// 87-99 CPU µs per synced append against 54-59 through the cache, and
// 200-222 µs against 140-172 µs per append.
func (w *WAL) writeZeros(f *os.File, size int64) error {
	s := &w.spare
	zeros := make([]byte, spareChunk)
	ranged := true // sync_file_range works here; else data syncs
	for off := int64(0); off < size; off += spareChunk {
		if s.stopping() {
			return ErrClosed
		}
		n := min(spareChunk, size-off)
		began := time.Now()
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		if off == 0 {
			s.step("spare-zeroing")
		}
		if ranged && writeBack(f, off, n) != nil {
			ranged = false
		}
		if !ranged && (off+spareChunk)%spareSyncEvery == 0 {
			if err := wal.SyncData(f); err != nil {
				return err
			}
		}
		if !s.rest(spareRest * time.Since(began)) {
			return ErrClosed
		}
	}
	return nil
}

// writeBack writes [off, off+n) of f to the device and waits for it
// (sync_file_range: the data only; the caller's final Sync makes the
// file's metadata durable).
func writeBack(f *os.File, off, n int64) error {
	const waitBefore, write, waitAfter = 1, 2, 4 // SYNC_FILE_RANGE_*
	return syscall.SyncFileRange(int(f.Fd()), off, n, waitBefore|write|waitAfter)
}

// rest waits d between two chunks of zeros (through restHook, if a test
// set one); false if Close asked meanwhile.
func (s *spareFile) rest(d time.Duration) bool {
	if s.restHook != nil {
		s.restHook(d)
		return !s.stopping()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}

// spareAlign rounds a spare's size to whole pages, so that its zeros
// cover every page an append may start.
const spareAlign = 4096

// spareSize is the size of a spare: a segment's batches plus room for the
// header (a checkpoint per group, about 75 bytes each) and the batch that
// may overflow the segment, so that appends do not grow the file.
func (w *WAL) spareSize() int64 {
	n := w.opts.SegmentSize + w.opts.SegmentSize/16
	return (n + spareAlign - 1) / spareAlign * spareAlign
}

// sizeOf returns f's size, or 0 if it cannot be read (the caller then
// only extends the file).
func sizeOf(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// takeSpare returns the ready spare, if any, for rotation. Callers hold
// wmu.
func (w *WAL) takeSpare() (*os.File, string) {
	s := &w.spare
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.f
	s.f = nil
	return f, s.fPath
}

// installSpare makes the spare f segment seq: header written over its
// zeros and data-synced, then the rename to the segment's name made
// durable. Until the directory sync, a crash leaves either the spare (a
// temporary file, deleted by recovery) or the complete segment.
func (w *WAL) installSpare(f *os.File, sparePath string, seq uint64, header []byte) (*segment, error) {
	path := filepath.Join(w.dir, segmentName(seq))
	if _, err := f.WriteAt(header, 0); err != nil {
		return nil, err
	}
	w.spare.step("header-written")
	if err := w.sync.data(f); err != nil {
		return nil, err
	}
	w.spare.step("header-synced")
	if err := os.Rename(sparePath, path); err != nil {
		return nil, err
	}
	w.spare.step("renamed")
	if err := w.sync.dir(w.dir); err != nil {
		return nil, err
	}
	w.spare.mu.Lock()
	w.spare.used++
	w.spare.mu.Unlock()
	n := int64(len(header))
	return &segment{seq: seq, path: path, f: f, size: n, dataStart: n, prewritten: true}, nil
}

// newSegment starts segment seq with header: in the spare if one is ready,
// else in a new fallocated file. Callers hold wmu.
func (w *WAL) newSegment(seq uint64, header []byte) (*segment, error) {
	if seq > maxSegmentSeq {
		return nil, fmt.Errorf("shared wal: segment sequence numbers exhausted")
	}
	w.spare.asked = false
	if f, sparePath := w.takeSpare(); f != nil {
		sg, err := w.installSpare(f, sparePath, seq, header)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("shared wal: installing segment %s: %w", segmentName(seq), err)
		}
		return sg, nil
	}
	return createSegment(w.dir, seq, header, w.preallocSize(), w.sync)
}

// recycleSegment keeps sg's file as the next spare, if none is ready or in
// preparation, instead of deleting it; it reports whether it did. The
// rename takes the segment out of the log as a removal would (recovery
// deletes the temporary file). Callers hold wmu.
func (w *WAL) recycleSegment(sg *segment) bool {
	s := &w.spare
	if s.kick == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil || s.recycled != nil || s.busy {
		return false
	}
	path := filepath.Join(w.dir, spareName(s.names+1))
	if err := os.Rename(sg.path, path); err != nil {
		return false
	}
	s.names++
	s.recycled, s.recycledPath = sg.f, path
	s.kickLocked()
	return true
}
