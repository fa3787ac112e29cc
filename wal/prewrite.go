package wal

import (
	"sync"
	"sync/atomic"
	"time"
)

// Segments are preallocated with fallocate, which leaves their blocks
// allocated but unwritten: reads return zeros, and the first write into a
// block converts its extent to written. On ext4 that conversion is a
// metadata change, so the fdatasync after an append that reached a new
// block must commit a journal transaction before it returns. At one
// proposer with 4 KiB entries every commit reaches a new block on every
// voter, and each pays that journal commit on top of its data sync
// (benchmarks/HISTORY.md, p1 pass and ninth pass).
//
// So the active segment is prewritten: a goroutine writes zeros into the
// preallocated blocks ahead of the writer and syncs them, a chunk at a
// time, so that the writer's appends land in written blocks and its
// fdatasync has only data to flush. The zeros replace zeros (the file reads
// the same before and after), so a crash at any point of it leaves the
// log as it was; only a write over data the writer put there could do
// harm, and the two never write the same bytes:
//
//   - the prewriter writes [from, to) while holding pw.mu, with from at
//     or past both the writer's claimed end and the end of the data, and
//     only once it is synced raises done to to;
//   - the writer writes [start, end) without the lock when end <= done
//     (the prewriter is past it for good), else it takes the lock first
//     and records end as claimed, which the next chunk starts after.
//
// Rotation detaches the prewriter from the segment (under pw.mu, so after
// the write of any chunk in progress) before it seals it: a sealed segment
// ends at its last record, and a chunk written after the truncation would
// grow it again. A chunk's sync may still run on the old file, which
// changes nothing in it; the prewriter then finds itself detached.
//
// How far ahead: as far as the segment has been written so far, at least
// prewriteMinAhead and at most Options.Prewrite, so that a log that writes
// little zeroes little (tests open hundreds of them), and within the
// preallocated size. Blocks already written need nothing: a segment
// records how far from its start they are (segment.written): its header
// for a new file, for a recycled one (recycle.go) where the file system
// reports its written blocks to end (writtenPrefix, FIEMAP), the end of the
// data after recovery. The chunks are paced (prewritePace) so that the
// zeros, about as many bytes as the log itself writes, are spread out
// rather than taken from the writer's fsyncs in bursts.

const (
	// defaultPrewrite is Options.Prewrite's default.
	defaultPrewrite = 4 << 20
	// prewriteMinAhead is the least the prewriter keeps ahead of a
	// segment's data, however little was written.
	prewriteMinAhead = 64 << 10
	// prewriteChunk is the most it writes (and syncs) at once.
	prewriteChunk = 1 << 20
	// prewritePace is the least time between two chunks' starts, per
	// MiB: 1/64 s per MiB caps the zeroing at 64 MiB/s.
	prewritePace = time.Second / 64
	// prewriteMaxPerSync: while the log writes more than this many bytes
	// per fsync the prewriter pauses (prewriteBackoff at a time). A
	// conversion costs one journal commit per fsync whatever the bytes, so
	// with large group commits it is shared by many entries, while the
	// zeros cost the disk as many bytes as the data.
	prewriteMaxPerSync = 64 << 10
	prewriteBackoff    = 100 * time.Millisecond
	// prewriteSample is the fewest fsyncs prewriteBusy judges by.
	prewriteSample = 16
	// pageSize aligns the chunks' starts: the block holding the data's
	// end is written by the writer.
	pageSize = 4096
)

// The steps of a chunk, for prewriter.onStep.
const (
	chunkWritten = 1 + iota
	chunkSynced
)

// prewriter is the state shared by the writer and the prewrite goroutine.
type prewriter struct {
	// mu is held while a chunk is written (not synced), and by a writer
	// whose write reaches past done while it records its end. Lock order:
	// wmu, then pw.mu, then mu.
	mu sync.Mutex
	// seg is the segment being prewritten, nil if none; limit is where
	// to stop (its preallocated size); claimed is the end of the
	// writer's writes into it. Guarded by mu.
	seg     *segment
	limit   int64
	claimed int64
	// done: the blocks of seg before it are written, data or zeros.
	// Raised by the prewriter under mu; read by the writer without it.
	done atomic.Int64
	// ahead is Options.Prewrite; zero disables prewriting.
	ahead int64

	kick     chan struct{} // buffered 1: requests coalesce
	stop     chan struct{}
	finished chan struct{}
	stopOnce sync.Once
	// zeroed counts the bytes written (tests).
	zeroed atomic.Int64
	// syncs and bytes are the Storage's counters when the prewriter last
	// decided whether the log is busy, and busy what it decided
	// (prewriter only): prewriteBusy.
	syncs, bytes uint64
	busy         bool
	// onStep, if set (tests only), runs after each step of a chunk, with
	// the chunk's bounds: chunkWritten (not synced yet), then chunkSynced
	// (done not raised yet).
	onStep func(step int, sg *segment, from, to int64)
}

// startPrewrite starts the prewrite goroutine, if prewriting is on, on the
// active segment. Open calls it.
func (s *Storage) startPrewrite() {
	pw := &s.pw
	if s.opts.Prewrite <= 0 || s.opts.NoSync || s.opts.NoPreallocate {
		return
	}
	pw.ahead = s.opts.Prewrite
	pw.kick = make(chan struct{}, 1)
	pw.stop = make(chan struct{})
	pw.finished = make(chan struct{})
	s.attachPrewrite(s.active())
	go s.prewriteLoop()
}

// stopPrewrite ends the prewrite goroutine. Close calls it before it takes
// wmu; a chunk in progress is finished first.
func (s *Storage) stopPrewrite() {
	pw := &s.pw
	if pw.kick == nil {
		return
	}
	pw.stopOnce.Do(func() { close(pw.stop) })
	<-pw.finished
}

// attachPrewrite makes sg the segment to prewrite. Callers hold wmu.
func (s *Storage) attachPrewrite(sg *segment) {
	pw := &s.pw
	if pw.kick == nil {
		return
	}
	pw.mu.Lock()
	pw.seg, pw.limit, pw.claimed = sg, s.preallocSize(), sg.size
	pw.done.Store(max(sg.written, sg.size))
	pw.mu.Unlock()
	s.askPrewrite(sg)
}

// detachPrewrite stops prewriting the active segment, waiting for a chunk
// in progress. Rotation calls it, holding wmu, before sealing.
func (s *Storage) detachPrewrite() {
	pw := &s.pw
	if pw.kick == nil {
		return
	}
	pw.mu.Lock()
	pw.seg = nil
	pw.done.Store(0)
	pw.mu.Unlock()
}

// claimWrite is called by the writer, holding wmu, before it writes up to
// end in the active segment: past done, it records end so that no later
// chunk starts before it, waiting out a chunk in progress.
func (s *Storage) claimWrite(end int64) {
	pw := &s.pw
	if pw.kick == nil || end <= pw.done.Load() {
		return
	}
	pw.mu.Lock()
	pw.claimed = max(pw.claimed, end)
	pw.mu.Unlock()
}

// prewriteTarget is how far ahead of its data segment sg should be
// written, given its data ends at size.
func (pw *prewriter) target(sg *segment, size int64) int64 {
	ahead := min(pw.ahead, max(prewriteMinAhead, size-sg.dataStart))
	return min(size+ahead, pw.limit)
}

// wants says whether a refill is due for sg, whose data ends at size and
// whose blocks are written up to done: the written blocks ahead of the
// data are less than half the target.
func (pw *prewriter) wants(sg *segment, size, done int64) bool {
	from, target := alignPage(max(done, size)), pw.target(sg, size)
	return from < target && from-size < (target-size)/2
}

func alignPage(n int64) int64 { return (n + pageSize - 1) / pageSize * pageSize }

// askPrewrite wakes the prewriter if the written blocks ahead of sg's data
// have fallen below half the target. Callers hold wmu.
func (s *Storage) askPrewrite(sg *segment) {
	pw := &s.pw
	if pw.kick == nil {
		return
	}
	if !pw.wants(sg, sg.size, pw.done.Load()) {
		return
	}
	select {
	case pw.kick <- struct{}{}:
	default:
	}
}

func (s *Storage) prewriteLoop() {
	pw := &s.pw
	defer close(pw.finished)
	zeros := make([]byte, min(prewriteChunk, pw.ahead))
	for {
		select {
		case <-pw.kick:
		case <-pw.stop:
			return
		}
		// A refill runs from a kick (the blocks ahead fell below half the
		// target) up to the target, in full chunks but the last: each
		// chunk costs a sync, so none is written for the few KiB the
		// target moved by meanwhile.
		refill := false
		for {
			if s.prewriteBusy() {
				select {
				case <-time.After(prewriteBackoff):
				case <-pw.stop:
					return
				}
				continue
			}
			start := time.Now()
			n, err := s.prewriteChunk(zeros, refill)
			if n < int64(len(zeros)) || err != nil {
				break
			}
			refill = true
			// Pace: a chunk of n bytes takes at least n/MiB * prewritePace.
			wait := time.Duration(n)*prewritePace/(1<<20) - time.Since(start)
			if wait > 0 {
				select {
				case <-time.After(wait):
				case <-pw.stop:
					return
				}
			}
		}
	}
}

// prewriteBusy says whether the log wrote more than prewriteMaxPerSync
// bytes per fsync over its last prewriteSample fsyncs at least. With fewer
// fsyncs since its last verdict it keeps that verdict, unless the bytes
// since then exceed the limit even counting a sync about to come.
func (s *Storage) prewriteBusy() bool {
	pw := &s.pw
	syncs, bytes := s.stats.fsyncs.Load(), s.stats.bytes.Load()
	ds, db := syncs-pw.syncs, bytes-pw.bytes
	switch {
	case ds >= prewriteSample:
		pw.busy = db/ds > prewriteMaxPerSync
	case db > (ds+1)*prewriteMaxPerSync:
		pw.busy = true
	default:
		return pw.busy
	}
	pw.syncs, pw.bytes = syncs, bytes
	return pw.busy
}

// prewriteChunk writes and syncs the next chunk of zeros of the segment
// being prewritten and returns its length: 0 if there is nothing to do,
// which unless refill is set includes blocks ahead at half the target or
// more (askPrewrite's rule).
// Only the write holds pw.mu: a writer that has to wait for it waits for
// a copy into the page cache, not for the sync. A failure only stops the
// prewriting of that segment: the writer's own write and sync report the
// file's errors.
func (s *Storage) prewriteChunk(zeros []byte, refill bool) (int64, error) {
	pw := &s.pw
	sg, from, to, err := s.writeChunk(zeros, refill)
	if sg == nil || err != nil {
		return 0, err
	}
	pw.step(chunkWritten, sg, from, to)
	err = syncData(sg.f)
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.seg != sg {
		return 0, nil // rotated meanwhile
	}
	if err != nil {
		pw.seg = nil
		return 0, err
	}
	pw.step(chunkSynced, sg, from, to)
	pw.zeroed.Add(to - from)
	pw.done.Store(to)
	return to - from, nil
}

// writeChunk writes the next chunk of zeros, [from, to) of sg, under pw.mu
// (see above); sg is nil if there is nothing to write.
func (s *Storage) writeChunk(zeros []byte, refill bool) (sg *segment, from, to int64, err error) {
	pw := &s.pw
	pw.mu.Lock()
	defer pw.mu.Unlock()
	sg = pw.seg
	if sg == nil {
		return nil, 0, 0, nil
	}
	s.mu.RLock()
	size := sg.size
	s.mu.RUnlock()
	size = max(size, pw.claimed)
	done := pw.done.Load()
	from = alignPage(max(done, size))
	to = min(pw.target(sg, size), from+int64(len(zeros)))
	if to <= from || (!refill && !pw.wants(sg, size, done)) {
		return nil, 0, 0, nil
	}
	if _, err := sg.f.WriteAt(zeros[:to-from], from); err != nil {
		pw.seg = nil
		return nil, 0, 0, err
	}
	return sg, from, to, nil
}

func (pw *prewriter) step(step int, sg *segment, from, to int64) {
	if pw.onStep != nil {
		pw.onStep(step, sg, from, to)
	}
}
