package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Deleting a compacted segment was the wal's worst stall: on ext4 the
// unlink of a 64 MiB preallocated file frees its extents in the journal,
// and the fsyncs of the active segment that run meanwhile wait for that
// journal commit (benchmarks/HISTORY.md, seventh pass). And each new
// segment then allocated 64 MiB again. So a compacted segment is recycled
// instead: its file is kept, under a temporary name, and becomes a later
// spare. Its blocks are allocated already, so neither its deletion nor a
// new allocation happens (and writes into them convert no unwritten
// extents, a saving not measured on its own). Only past
// Options.RecycleSegments kept files are segments deleted.
//
// A recycled file holds the records of the segment it was. Recovery never
// takes them for records of the new one: every record after a header is
// checksummed from its segment's seed (segmentSeed), under which the old
// ones cannot decode; they read as the damage a torn write leaves, which
// the torn-tail rules cut. Two places must not hold old bytes, because
// recovery reads them as a header-less spare's (recover.go,
// dropUnusedSpare): the header and the zeros after it. So the file's first
// spareClearSize bytes are zeroed and synced before it is renamed to its
// spare name, and rotation takes a recycled spare only for a header that
// fits in them.
//
// The steps and what a crash leaves after each:
//
//  1. the remover renames segment k's file to recycledName(k), oldest
//     first, once the compaction that made it obsolete is durable: the
//     log without segment k, or with it, both valid (the rename is not
//     synced; a later one in the same directory does not overtake it);
//     recovery takes the temporary file back into the pool (Close leaves
//     the pool's files for the next Open) or deletes it past the bound;
//  2. the spare goroutine zeroes the file's start, preallocates it to a
//     full segment and syncs it: still a temporary file;
//  3. it renames the file to the spare's segment name and syncs the
//     directory: an unused spare, zeros, then old bytes;
//  4. rotation writes the header and data-syncs it, as for any spare.

// spareClearSize is how much of a recycled file is zeroed before it
// becomes a spare. A segment header is a few hundred bytes; only one
// carrying a snapshot's ConfState of thousands of members exceeds this,
// and rotation then creates a new file instead. Recovery relies on the
// same value, so it is fixed: a variable only so that tests, whose
// segments are smaller than it, can lower it for the whole test binary
// (recycle_test.go) and keep old bytes in their recycled spares.
var spareClearSize = 64 << 10

// defaultRecycleSegments is Options.RecycleSegments' default.
const defaultRecycleSegments = 2

// recycledFile is a compacted segment's file waiting to become a spare.
type recycledFile struct {
	path string
	f    *os.File
}

// recycledSuffix ends the names of pooled files: recycledName.
const recycledSuffix = ".recycled" + tmpSuffix

// recycledName is the temporary name of segment seq's file once recycled.
// It ends in tmpSuffix: a file recovery does not take back into the pool
// is deleted with the other temporary files.
func recycledName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, recycledSuffix) }

// adoptRecycled takes the pooled file name, found in the directory at
// Open, back into the pool unless the pool is full. A pooled file is no
// part of the log, whatever it holds, so any file of that name will do.
// Only recovery calls it, before the goroutines start.
func (s *Storage) adoptRecycled(name string) bool {
	if !strings.HasSuffix(name, recycledSuffix) || len(s.spare.pool) >= s.opts.RecycleSegments {
		return false
	}
	path := filepath.Join(s.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false // deleted instead
	}
	s.spare.pool = append(s.spare.pool, recycledFile{path: path, f: f})
	return true
}

// retireSegment takes a compacted segment out of the directory: it keeps
// its file for reuse if the pool has room, else deletes it. Only the
// remover calls it (under rmu), oldest segment first.
func (s *Storage) retireSegment(sg *segment) error {
	if s.keepForReuse(sg) {
		return nil
	}
	sg.f.Close()
	return s.deleteSegment(sg.path)
}

// keepForReuse renames sg's file into the pool unless the pool is full.
// The rename runs without spare.mu, which rotation takes: only the remover
// adds to the pool, so the room it saw cannot shrink meanwhile.
func (s *Storage) keepForReuse(sg *segment) bool {
	s.spare.mu.Lock()
	full := len(s.spare.pool) >= s.opts.RecycleSegments
	s.spare.mu.Unlock()
	if full {
		return false
	}
	tmp := filepath.Join(s.dir, recycledName(sg.seq))
	if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
		return false // never replace a pooled file
	}
	if err := os.Rename(sg.path, tmp); err != nil {
		return false // deleted instead
	}
	s.spare.mu.Lock()
	s.spare.pool = append(s.spare.pool, recycledFile{path: tmp, f: sg.f})
	s.spare.mu.Unlock()
	return true
}

// poolSpare renames the unused spare into the pool, if the pool has room,
// so that Close (or a spare prepared for another segment) costs no unlink
// and the next spare no allocation. A crash after the rename leaves a
// pooled file, which recovery takes back; before it, an unused spare,
// which recovery deletes. Callers hold spare.mu.
func (s *Storage) poolSpare() bool {
	if len(s.spare.pool) >= s.opts.RecycleSegments {
		return false
	}
	tmp := filepath.Join(s.dir, recycledName(s.spare.seq))
	if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
		return false
	}
	if err := os.Rename(filepath.Join(s.dir, segmentName(s.spare.seq)), tmp); err != nil {
		return false
	}
	s.spare.pool = append(s.spare.pool, recycledFile{path: tmp, f: s.spare.f})
	return true
}

// reuseFile makes the oldest pooled file the spare at path (steps 2 and 3
// above, but for the directory sync, which prepareSpare does) and returns
// it with how far its blocks are written (by its earlier life, or by
// prewriting: segment.written), as the file system reports it. It returns
// nil if the pool is empty or the reuse failed
// (the file is deleted then, and a new one created). Callers hold
// spare.mu.
func (s *Storage) reuseFile(path string) (*os.File, int64) {
	if len(s.spare.pool) == 0 {
		return nil, 0
	}
	r := s.spare.pool[0]
	s.spare.pool = append(s.spare.pool[:0], s.spare.pool[1:]...)
	if err := clearStart(r.f, s.preallocSize()); err != nil {
		r.f.Close()
		os.Remove(r.path)
		return nil, 0
	}
	// A spare must never replace a segment (openSegmentFile's exclusive
	// flag, for new files). Segment files are made only under spare.mu.
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		r.f.Close()
		os.Remove(r.path)
		return nil, 0
	}
	if err := os.Rename(r.path, path); err != nil {
		r.f.Close()
		os.Remove(r.path)
		return nil, 0
	}
	s.spare.reused++
	written, err := writtenPrefix(r.f)
	if err != nil {
		written = 0 // prewrite all of it: zeros over old bytes are no harm
	}
	return r.f, written
}

// clearStart zeroes the first spareClearSize bytes of f, preallocates it
// to prealloc bytes and syncs it.
func clearStart(f *os.File, prealloc int64) error {
	if _, err := f.WriteAt(make([]byte, spareClearSize), 0); err != nil {
		return err
	}
	if prealloc > 0 {
		if err := preallocate(f, prealloc); err != nil {
			return err
		}
	}
	return f.Sync()
}

// closePool closes the pooled files and leaves them in the directory,
// for the next Open to take back. Callers hold spare.mu.
func (s *Storage) closePool() {
	for _, r := range s.spare.pool {
		r.f.Close()
	}
	s.spare.pool = nil
}
