package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/logbounds"
	pb "github.com/raftkit/raft/raftpb"
)

// Options tune a Storage. The zero value gives the defaults.
type Options struct {
	// SegmentSize is the size in bytes at which the active segment is
	// sealed and a new one started. A batch never spans segments, so a
	// segment exceeds this by at most one batch. Default 64 MiB.
	SegmentSize int64
	// CacheSize bounds, in bytes of encoded entries, the newest entries kept
	// in memory for reads; older entries are read back from their segment.
	// Default 4 MiB; negative disables the cache.
	CacheSize int64
	// NoPreallocate turns off reserving SegmentSize bytes for each new
	// segment up front.
	NoPreallocate bool
	// NoSync skips fdatasync: writes reach the operating system but a
	// power loss or kernel crash may lose acknowledged ones. For benchmarks
	// that measure CPU and for tests only; never for data that matters.
	NoSync bool
	// DeleteChunk, if above zero, makes the deletion of a compacted
	// segment gradual: the file is shortened DeleteChunk bytes at a time, a
	// few milliseconds apart, before it is unlinked. On ext4 one unlink of
	// a 64 MiB segment makes the fsyncs running meanwhile wait for it; at
	// 256 proposers of 4 KiB a chunk of 1 MiB took the commit p99 from
	// about 110 to 45 ms, at about 0.85 of the commits/s (benchmarks/
	// HISTORY.md, seventh pass). Zero (the default) unlinks at once.
	DeleteChunk int64
	// RecycleSegments is how many compacted segments' files are kept to
	// be reused as the next segments (recycle.go) rather than deleted:
	// reusing a file costs neither the unlink of the old one nor the
	// allocation of a new one, and the first deletes only happen past
	// this many. Each kept file takes a segment's disk space. Default 2;
	// negative deletes every compacted segment at once.
	RecycleSegments int
	// Prewrite is how far, in bytes, the blocks ahead of the active
	// segment's data are kept written (with zeros, by a goroutine, off the
	// write path) rather than left as fallocate reserved them. On ext4 an
	// fdatasync after an append into a reserved block must also commit
	// the journal (the block's conversion to written); into a written
	// block it flushes the data only: about half the time per fsynced
	// 4 KiB Save in the package's benchmark, 1.1-1.4x the commits/s at one
	// proposer with 4 KiB entries end to end (benchmarks/HISTORY.md, ninth
	// pass). The prewriter stays ahead only as far as the segment has
	// been written so far (at least 64 KiB), so a log that writes little
	// zeroes little; it pauses while group commits are large (over 64 KiB
	// per fsync: the journal commit is shared then) and writes at most 64
	// MiB/s. Blocks already written (a recycled segment's) are skipped.
	// Default 4 MiB, capped at SegmentSize; negative turns it off. Off with
	// NoSync or NoPreallocate.
	Prewrite int64
}

const (
	defaultSegmentSize = 64 << 20
	defaultCacheSize   = 4 << 20
	lockFileName       = "LOCK"
)

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.SegmentSize <= 0 {
		out.SegmentSize = defaultSegmentSize
	}
	if out.CacheSize == 0 {
		out.CacheSize = defaultCacheSize
	}
	switch {
	case out.Prewrite == 0:
		out.Prewrite = min(defaultPrewrite, out.SegmentSize)
	case out.Prewrite < 0:
		out.Prewrite = 0
	}
	switch {
	case out.RecycleSegments == 0:
		out.RecycleSegments = defaultRecycleSegments
	case out.RecycleSegments < 0:
		out.RecycleSegments = 0
	}
	return out
}

// Storage is a raft.Storage kept durably in a directory. See the package
// documentation for the layout and the guarantees.
//
// Reads (the raft.Storage methods) and writes may come from any goroutines.
// Writes are applied in the order they take the write lock; their fsyncs
// are shared (group commit).
type Storage struct {
	dir  string
	opts Options
	lock *os.File

	// wmu serialises writers: a batch is written to the file and applied to
	// the in-memory state in one critical section, so both see batches in
	// the same order. Lock order: wmu, then smu, then mu.
	wmu sync.Mutex
	buf []byte // scratch for framing batches; guarded by wmu
	ops []op   // scratch for a batch's ops, reused like buf; guarded by wmu

	// mu guards what readers see. Writers hold wmu and take mu only to
	// publish a batch they have already written.
	mu       sync.RWMutex
	segs     []*segment // oldest first; the last one takes writes
	st       logState
	cache    entryCache
	snapshot pb.Snapshot
	closed   bool

	// smu and the fields below implement group commit; see waitDurable.
	// Writers (holding wmu) update wrote and syncFile; the syncer needs
	// only smu, so that holders of wmu may wait for it.
	smu      sync.Mutex
	scond    *sync.Cond
	syncing  bool     // an fsync is in progress
	syncOn   *os.File // the file of that fsync
	wrote    uint64   // bytes written since Open
	synced   uint64   // bytes of wrote known durable; synced <= wrote
	syncFile *os.File // the active segment's file
	failed   error    // a write or sync failed; the storage takes no more writes

	stats struct{ fsyncs, batches, bytes atomic.Uint64 }

	// bounds mirrors the log's bounds for LogBounds; see publishBounds.
	bounds logbounds.Bounds

	// beforeSync, if set (tests only), runs before each group-commit fsync.
	beforeSync func()
	// beforeDelete, if set (tests only), runs in removeObsolete before it
	// deletes anything.
	beforeDelete func()
	// onDeleteStep, if set (tests only), runs after each step that
	// shortens a segment being deleted, with its new size.
	onDeleteStep func(size int64)
	// afterNewSegment, if set (tests only), runs in rotation between
	// starting the next segment and making it the active one.
	afterNewSegment func()
	// beforeSnapshotFile, if set (tests only), runs in CreateSnapshot
	// before it writes the snapshot file.
	beforeSnapshotFile func()

	// snapMu serialises the writers of snapshot files (CreateSnapshot, and
	// Save installing a snapshot): CreateSnapshot writes its file without
	// holding wmu, and no other snapshot may be recorded meanwhile. Lock
	// order: snapMu before wmu.
	snapMu sync.Mutex

	// rmu serialises removals of obsolete files (removeObsolete), so that
	// segments are deleted oldest first across calls. Lock order: rmu
	// before wmu.
	rmu sync.Mutex
	// The remover goroutine (removeLoop) deletes what Compact and
	// CreateSnapshot made obsolete, off their callers' path: removeKick
	// asks it for one pass (buffered 1: requests coalesce), removerStop
	// ends it after a last pending pass, removerDone says it ended.
	removeKick  chan struct{}
	removerStop chan struct{}
	removerDone chan struct{}
	stopRemover sync.Once

	// spare is the next segment's file, prepared off the write lock
	// (spare.go).
	spare spareSegment
	// pw writes zeros ahead of the active segment's data (prewrite.go).
	pw prewriter
	// inlineLimit is the largest snapshot data CreateSnapshot keeps in its
	// log record (inlineSnapshotLimit; tests lower it to -1 to test
	// snapshot files).
	inlineLimit int
	// droppedSpare says recovery deleted an unused spare a crash left as
	// the last segment (tests).
	droppedSpare bool
	// noSpare, if set (tests and benchmarks only), makes rotation create
	// each segment under the write lock, as before spares.
	noSpare bool
}

var (
	_ raft.Storage       = (*Storage)(nil)
	_ raft.StorageBounds = (*Storage)(nil)
)

// Open opens the log in dir, creating the directory and an empty log if
// there is none, and recovers its state: every record of every segment is
// read and its checksum verified. A partial batch at the end of the last
// segment (a write a crash cut short) is cut off; damage anywhere else is
// reported as a *CorruptionError naming the file and offset, and Open fails.
//
// The directory is locked until Close; a second Open fails with ErrLocked.
// Open works on Linux only (it relies on flock, fallocate and fdatasync).
func Open(dir string, opts *Options) (*Storage, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: creating directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockFileName))
	if err != nil {
		return nil, err
	}
	s := &Storage{dir: dir, opts: opts.withDefaults(), lock: lock, inlineLimit: inlineSnapshotLimit}
	s.scond = sync.NewCond(&s.smu)
	s.cache.limit = s.opts.CacheSize
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.syncFile = s.active().f
	s.publishBounds()
	s.removeKick = make(chan struct{}, 1)
	s.removerStop = make(chan struct{})
	s.removerDone = make(chan struct{})
	go s.removeLoop()
	s.startSpare()
	s.startPrewrite()
	return s, nil
}

func (s *Storage) preallocSize() int64 {
	if s.opts.NoPreallocate {
		return 0
	}
	return s.opts.SegmentSize
}

// Close syncs what was written and releases the files and the directory
// lock. Calls after the first return ErrClosed.
func (s *Storage) Close() error {
	// A removal still pending is done first, so that a closed log holds
	// no obsolete file it was asked to delete.
	s.stopRemover.Do(func() { close(s.removerStop) })
	<-s.removerDone
	s.stopSpare()
	s.stopPrewrite()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()

	err := s.failure()
	if err == nil {
		err = syncData(s.active().f)
	}
	s.smu.Lock()
	for s.syncing {
		s.scond.Wait()
	}
	if s.failed == nil {
		s.failed = ErrClosed
	}
	s.scond.Broadcast()
	s.smu.Unlock()
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

// closeFiles closes the segments, the lock and the pooled files recovery
// took (Close has closed the pool already: stopSpare).
func (s *Storage) closeFiles() error {
	var err error
	for _, r := range s.spare.pool {
		r.f.Close()
	}
	s.spare.pool = nil
	for _, sg := range s.segs {
		if cerr := sg.f.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Storage) active() *segment { return s.segs[len(s.segs)-1] }

// Dir returns the directory the storage lives in.
func (s *Storage) Dir() string { return s.dir }

// InitialState implements raft.Storage.
func (s *Storage) InitialState() (pb.HardState, pb.ConfState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return pb.HardState{}, pb.ConfState{}, ErrClosed
	}
	return s.st.hardState, s.snapshot.Metadata.ConfState, nil
}

// FirstIndex implements raft.Storage.
func (s *Storage) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.st.compactIndex + 1, nil
}

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.st.lastIndex, nil
}

// Term implements raft.Storage.
func (s *Storage) Term(i uint64) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return 0, ErrClosed
	case i < s.st.compactIndex:
		return 0, raft.ErrCompacted
	case i > s.st.lastIndex:
		return 0, raft.ErrUnavailable
	}
	return s.st.term(i), nil
}

// Snapshot implements raft.Storage. It returns the latest snapshot,
// installed by ApplySnapshot or taken by CreateSnapshot.
func (s *Storage) Snapshot() (pb.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return pb.Snapshot{}, ErrClosed
	}
	return s.snapshot, nil
}

// Entries implements raft.Storage. Entries still in the cache come from
// memory, older ones are read from their segments (and their checksums
// verified again). Unlike MemoryStorage, a range past the last index
// returns ErrUnavailable instead of panicking.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return nil, ErrClosed
	case lo <= s.st.compactIndex:
		return nil, raft.ErrCompacted
	case hi > s.st.lastIndex+1 || lo > hi:
		return nil, raft.ErrUnavailable
	case s.st.lastIndex == s.st.compactIndex:
		return nil, raft.ErrUnavailable
	}
	cacheFirst := s.cache.firstIndex(s.st.lastIndex)
	if lo >= cacheFirst {
		ents := s.cache.slice(lo, hi)
		n := fitting(ents, maxSize)
		return ents[:n:n], nil
	}
	var lim sizeLimit
	lim.max = maxSize
	out, err := s.readEntries(lo, min(hi, cacheFirst), &lim)
	if err != nil || lim.full || hi <= cacheFirst {
		return out, err
	}
	for _, e := range s.cache.slice(cacheFirst, hi) {
		if !lim.take(&e) {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// sizeLimit applies the raft.Storage rule for maxSize: the longest prefix
// within maxSize bytes of encoding, but at least one entry.
type sizeLimit struct {
	max, used uint64
	n         int
	full      bool
}

func (l *sizeLimit) take(e *pb.Entry) bool {
	if l.full {
		return false
	}
	size := uint64(e.Size())
	if l.n > 0 && l.used+size > l.max {
		l.full = true
		return false
	}
	l.used += size
	l.n++
	return true
}

func fitting(ents []pb.Entry, maxSize uint64) int {
	var lim sizeLimit
	lim.max = maxSize
	for k := range ents {
		if !lim.take(&ents[k]) {
			return k
		}
	}
	return len(ents)
}

// readEntries reads live entries [lo, hi) from their segments, as many as
// lim allows. Callers hold mu (read).
func (s *Storage) readEntries(lo, hi uint64, lim *sizeLimit) ([]pb.Entry, error) {
	var out []pb.Entry
	for i := lo; i < hi; {
		r, off, at := s.st.locate(i)
		rd := segReader{sg: r.seg, pos: off}
		for ; at <= r.last && i < hi; at++ {
			payload, recOff, err := rd.nextEntry()
			if err != nil {
				return nil, err
			}
			idx, _, err := entryID(payload)
			if err == nil && idx != at {
				err = fmt.Errorf("found entry %d where entry %d should be", idx, at)
			}
			if err != nil {
				return nil, &CorruptionError{File: r.seg.path, Offset: recOff, Reason: err.Error()}
			}
			if at < i {
				continue
			}
			e, err := decodeEntry(payload)
			if err != nil {
				return nil, &CorruptionError{File: r.seg.path, Offset: recOff, Reason: err.Error()}
			}
			if !lim.take(&e) {
				return out, nil
			}
			out = append(out, e)
			i++
		}
	}
	return out, nil
}

// Stats are counters for monitoring and tests.
type Stats struct {
	// Fsyncs counts data syncs of segments, group commits and seals.
	Fsyncs uint64
	// Batches counts batches written (each Save, Append, ... that wrote
	// anything is one batch).
	Batches uint64
	// BytesWritten counts bytes appended to segments since Open.
	BytesWritten uint64
	// Segments is the number of segment files.
	Segments int
	// IndexMarks is the number of offsets in the sparse in-memory index.
	IndexMarks int
	// CachedEntries and CachedBytes describe the entry cache.
	CachedEntries int
	CachedBytes   int64
}

// Stats returns current counters.
func (s *Storage) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Stats{
		Fsyncs:        s.stats.fsyncs.Load(),
		Batches:       s.stats.batches.Load(),
		BytesWritten:  s.stats.bytes.Load(),
		Segments:      len(s.segs),
		IndexMarks:    s.st.markCount(),
		CachedEntries: len(s.cache.ents),
		CachedBytes:   s.cache.bytes,
	}
}

func (s *Storage) failure() error {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.failed
}

// fail makes err sticky: after a failed write or sync the state of the
// files is unknown, so the storage refuses further writes (reopening it
// recovers whatever reached the disk).
func (s *Storage) fail(err error) error {
	s.smu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	s.scond.Broadcast()
	s.smu.Unlock()
	return err
}
