package shared

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raft/wal"
)

// Options tune a WAL. The zero value gives the defaults.
type Options struct {
	// SegmentSize is the size in bytes of batches after which the active
	// segment is sealed and a new one started; the segment header (a
	// checkpoint of every group) comes on top. A batch never spans
	// segments, so a segment exceeds this by at most one batch. Default
	// 64 MiB, at most 1 GiB.
	SegmentSize int64
	// MaxSegments is the number of segments past which the WAL frees the
	// oldest one by rewriting the live entries of the groups still holding
	// some there (see the package documentation, "Reclaiming space").
	// Default 8.
	MaxSegments int
	// GroupCacheSize bounds, in bytes of encoded entries, the newest
	// entries kept in memory per group. Default 64 KiB; negative disables
	// the cache.
	GroupCacheSize int64
	// CacheSize bounds the entry caches of all groups together; past it,
	// whole group caches are dropped until a quarter of it is free.
	// Default 64 MiB.
	CacheSize int64
	// NoPreallocate turns off reserving SegmentSize bytes per new segment,
	// and with it the spares: segments then grow as they are written.
	//
	// By default every segment but a new WAL's first is a spare, prepared
	// ahead by a goroutine off the write path: a file of SegmentSize plus
	// a sixteenth, written with zeros through the page cache, a chunk at a
	// time written back (so appends overwrite cached pages instead of
	// reading each page they start from the disk), and synced (or
	// a compacted segment's file, recycled and zeroed the same way). Appends then overwrite
	// written blocks, so their fdatasyncs flush data only: appends into
	// blocks that fallocate left unwritten convert extents, which commits
	// an ext4 journal transaction at every fdatasync. Rotation only writes
	// the header into the spare, data-syncs it, renames it and syncs the
	// directory. The first segment is fallocated as before, so Open writes
	// no 64 MiB of zeros (tests and hosts open many WALs); once it holds
	// 1 MiB of data (or a quarter of SegmentSize) a spare is prepared, and
	// the WAL rotates into it as soon as it is ready. A WAL that writes
	// less never prepares one. Later spares are asked for when the active
	// segment is half full. The spare is a temporary file until rotation
	// renames it, so recovery, which deletes temporary files, never reads
	// one, and the on-disk format is unchanged: older builds read these
	// directories. Measured in README.md ("Many groups, one log").
	NoPreallocate bool
	// NoSync skips every fsync (of batches, segments, snapshot files and
	// directories). Writes survive a process crash but not a power loss or
	// kernel crash; for tests and for measuring CPU cost only. It also
	// turns off the spares (NoPreallocate): without fsyncs there is no
	// journal commit to save.
	NoSync bool
}

const (
	defaultSegmentSize    = 64 << 20
	maxSegmentSize        = 1 << 30
	defaultMaxSegments    = 8
	defaultGroupCacheSize = 64 << 10
	defaultCacheSize      = 64 << 20
)

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.SegmentSize <= 0 {
		out.SegmentSize = defaultSegmentSize
	}
	out.SegmentSize = min(out.SegmentSize, maxSegmentSize)
	if out.MaxSegments <= 1 {
		out.MaxSegments = defaultMaxSegments
	}
	if out.GroupCacheSize == 0 {
		out.GroupCacheSize = defaultGroupCacheSize
	}
	if out.CacheSize <= 0 {
		out.CacheSize = defaultCacheSize
	}
	return out
}

// WAL is a write-ahead log shared by many Raft groups. See the package
// documentation for the layout and the guarantees.
//
// All methods are safe for concurrent use. Writes are applied in the order
// they take the write lock; their fsyncs are shared (group commit).
type WAL struct {
	dir  string
	opts Options
	lock *os.File
	sync syncer // Options.NoSync

	// wmu serialises writers: a batch is written to the file and applied to
	// the in-memory state in one critical section, so both see batches in
	// the same order. Lock order: wmu, then smu, then mu.
	wmu        sync.Mutex
	buf        []byte      // scratch for framing batches
	ops        []op        // scratch for a batch's ops
	items      []batchItem // scratch for a batch's items
	plans      []planned   // scratch for planning a batch
	batchSeq   uint64      // numbers the batches SaveBatch plans
	relocating bool        // a relocation is writing; no nested one

	// mu guards what readers see; writers hold wmu and take mu only to
	// publish a batch they have written.
	mu         sync.RWMutex
	segs       []*segment // oldest first, consecutive sequence numbers
	groups     groupSet
	cacheBytes int64 // sum of the groups' cache sizes
	// pins counts, per segment, the groups whose oldest live entry is
	// there: a segment before the first one with a count holds nothing
	// live, so collection needs no scan of the groups.
	pins   map[uint32]int
	closed bool

	// smu and the fields below implement group commit (see waitDurable).
	smu      sync.Mutex
	scond    *sync.Cond
	syncing  bool
	wrote    uint64 // bytes written since Open
	synced   uint64 // bytes of wrote known durable
	syncFile *os.File
	failed   error // a write or sync failed: no more writes

	stats struct{ fsyncs, batches, bytes, relocated atomic.Uint64 }

	// spare is the next segment, prepared ahead (spare.go).
	spare spareFile

	// beforeSync, if set (tests only), runs before each group-commit fsync.
	beforeSync func()
}

// Open opens the WAL in dir, creating the directory and an empty log if
// there is none, and recovers every group: all records of all segments are
// read and their checksums verified. A partial batch at the end of the
// newest segment (a write a crash cut short) is cut off, for all the groups
// it touched at once; damage anywhere else fails Open with a
// *CorruptionError naming the file and offset.
//
// The directory is locked until Close. Linux only.
func Open(dir string, opts *Options) (*WAL, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("shared wal: creating directory: %w", err)
	}
	lock, err := wal.LockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	w := &WAL{dir: dir, opts: opts.withDefaults(), lock: lock, groups: groupSet{}, pins: map[uint32]int{}}
	w.sync.off = w.opts.NoSync
	w.scond = sync.NewCond(&w.smu)
	if err := w.recover(); err != nil {
		w.closeFiles()
		return nil, err
	}
	w.syncFile = w.active().f
	w.startSpare()
	return w, nil
}

// Close syncs what was written and releases the files and the lock. Views
// return ErrClosed afterwards.
func (w *WAL) Close() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	w.mu.Unlock()
	err := w.failure()
	if err == nil {
		err = w.sync.data(w.active().f)
	}
	w.smu.Lock()
	for w.syncing {
		w.scond.Wait()
	}
	if w.failed == nil {
		w.failed = ErrClosed
	}
	w.scond.Broadcast()
	w.smu.Unlock()
	w.stopSpare()
	// Under mu: no reader is between its closed check and its read.
	w.mu.Lock()
	defer w.mu.Unlock()
	if cerr := w.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (w *WAL) closeFiles() error {
	var err error
	for _, sg := range w.segs {
		if cerr := sg.f.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := w.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *WAL) active() *segment { return w.segs[len(w.segs)-1] }

// segment returns the open segment seq; it must exist.
func (w *WAL) segment(seq uint32) *segment {
	k := uint64(seq) - w.segs[0].seq
	if k >= uint64(len(w.segs)) {
		panic(fmt.Sprintf("shared wal: segment %d is not open (have %d..%d)", seq, w.segs[0].seq, w.active().seq))
	}
	return w.segs[k]
}

func (w *WAL) preallocSize() int64 {
	if w.opts.NoPreallocate {
		return 0
	}
	return w.opts.SegmentSize
}

// Dir returns the WAL's directory.
func (w *WAL) Dir() string { return w.dir }

// Group returns the raft.Storage view of a live group, or ErrNoGroup.
func (w *WAL) Group(id uint64) (*Group, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, ErrClosed
	}
	g := w.groups[id]
	if g == nil {
		return nil, fmt.Errorf("%w: %d", ErrNoGroup, id)
	}
	return &Group{w: w, g: g}, nil
}

// GroupIDs returns the IDs of the live groups in increasing order.
func (w *WAL) GroupIDs() []uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	ids := make([]uint64, 0, len(w.groups))
	for id := range w.groups {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	return ids
}

// Stats are counters for monitoring and tests.
type Stats struct {
	// Fsyncs counts data syncs: group commits, seals and syncs before
	// segments are deleted.
	Fsyncs uint64
	// Batches counts batches written (SaveBatch calls that wrote, and the
	// single-group writes of the views and of group lifecycle).
	Batches uint64
	// BytesWritten counts bytes appended to segments since Open.
	BytesWritten uint64
	// Relocated counts entries rewritten to free old segments.
	Relocated uint64
	// Segments is the number of segment files.
	Segments int
	// Groups is the number of live groups.
	Groups int
	// IndexedEntries is the number of entry locations in memory, over all
	// groups (8 bytes each).
	IndexedEntries int
	// CachedBytes is the size of the entry caches, over all groups.
	CachedBytes int64
	// SparesPrepared counts segments written with zeros ahead of use (their
	// syncs, off the write path, are not in Fsyncs); SparesUsed those that
	// rotation installed; SegmentsRecycled the prepared ones that were
	// compacted segments rather than new files. SpareFailures counts
	// preparations that failed (an I/O error, a full disk): rotation then
	// creates the segment itself, and fails the WAL if that fails too.
	SparesPrepared, SparesUsed, SegmentsRecycled, SpareFailures uint64
}

// Stats returns current counters. It visits every group.
func (w *WAL) Stats() Stats {
	w.spare.mu.Lock()
	prepared, used, recycled, failed := w.spare.prepared, w.spare.used, w.spare.recycledN, w.spare.failed
	w.spare.mu.Unlock()
	w.mu.RLock()
	defer w.mu.RUnlock()
	st := Stats{
		Fsyncs:       w.stats.fsyncs.Load(),
		Batches:      w.stats.batches.Load(),
		BytesWritten: w.stats.bytes.Load(),
		Relocated:    w.stats.relocated.Load(),
		Segments:     len(w.segs),
		Groups:       len(w.groups),
		CachedBytes:  w.cacheBytes,

		SparesPrepared:   prepared,
		SparesUsed:       used,
		SegmentsRecycled: recycled,
		SpareFailures:    failed,
	}
	for _, g := range w.groups {
		st.IndexedEntries += len(g.locs)
	}
	return st
}

// SegmentPaths returns the paths of the segment files, oldest first.
func (w *WAL) SegmentPaths() []string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]string, len(w.segs))
	for k, sg := range w.segs {
		out[k] = sg.path
	}
	return out
}

func (w *WAL) failure() error {
	w.smu.Lock()
	defer w.smu.Unlock()
	return w.failed
}

// fail makes err sticky: after a failed write or sync the state of the
// files is unknown, so the WAL takes no more writes (reopening recovers
// what reached the disk).
func (w *WAL) fail(err error) error {
	w.smu.Lock()
	if w.failed == nil {
		w.failed = err
	}
	w.scond.Broadcast()
	w.smu.Unlock()
	return err
}

// writable says whether writes may proceed. Callers hold wmu.
func (w *WAL) writable() error {
	if w.closed {
		return ErrClosed
	}
	return w.failure()
}
