package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// removeObsolete makes everything written so far durable, then retires
// (recycles or deletes, recycle.go) the segments that hold no live entry,
// and deletes the snapshot files older than the current snapshot. Syncing
// first matters: a file may be retired only once the records that make it
// unnecessary (a compaction, a snapshot) are on disk, or recovery would
// find entries that are neither compacted nor stored, or a snapshot record
// without its file.
//
// Only the choice of what to delete holds wmu: the sync is a group commit
// shared with writers, and the deletions (tens of milliseconds for a
// preallocated 64 MiB segment on ext4) run while writes go on.
func (s *Storage) removeObsolete() error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	victims, current, target, err := s.cutObsolete()
	if err != nil {
		return err
	}
	if err := s.waitDurable(target); err != nil {
		// The storage has failed; the files stay, for recovery to sort out.
		for _, sg := range victims {
			sg.f.Close()
		}
		return err
	}
	s.smu.Lock()
	// No fsync may be running on a file closed below. Syncs only ever
	// start on the active segment, which is never a victim, so this waits
	// for one sync at most.
	for s.syncing && holds(victims, s.syncOn) {
		s.scond.Wait()
	}
	s.smu.Unlock()
	if s.beforeDelete != nil {
		s.beforeDelete()
	}
	// Oldest first: a crash part way leaves a suffix of the segments, and
	// any suffix holding the live entries is a valid log. rmu keeps this
	// order across calls.
	for _, sg := range victims {
		if err := s.retireSegment(sg); err != nil {
			return s.fail(fmt.Errorf("wal: removing segment: %w", err))
		}
	}
	_, snaps, _, err := listDir(s.dir)
	if err != nil {
		return err
	}
	return s.removeSnapshotsBefore(snaps, current)
}

// cutObsolete takes the segments before the first one holding a live entry
// out of the log and returns them, with the current snapshot's file name
// and the write position that makes their obsolescence durable.
func (s *Storage) cutObsolete() (victims []*segment, current snapName, target uint64, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return nil, snapName{}, 0, err
	}
	s.smu.Lock()
	target = s.wrote
	s.smu.Unlock()
	keep := s.st.firstLiveSegment()
	if active := s.active().seq; keep == 0 || keep > active {
		keep = active
	}
	if sg := s.st.snapSeg; sg != nil && sg.seq < keep {
		keep = sg.seq // it holds the current snapshot's data
	}
	k := 0
	for s.segs[k].seq < keep {
		k++
	}
	if k > 0 {
		s.mu.Lock()
		victims = s.segs[:k:k]
		s.segs = append([]*segment(nil), s.segs[k:]...)
		s.mu.Unlock()
	}
	if !s.st.snap.empty() {
		current = snapNameOf(s.st.snap.meta)
	}
	return victims, current, target, nil
}

// removeSnapshotsBefore deletes the snapshot files among names older than
// current (none if current is the zero name). Newer files are left alone:
// they belong to snapshots made since current was read.
func (s *Storage) removeSnapshotsBefore(names []snapName, current snapName) error {
	for _, n := range names {
		if n == current || n.index > current.index || current == (snapName{}) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, n.String())); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("wal: removing stale snapshot: %w", err)
		}
	}
	return nil
}

func holds(segs []*segment, f *os.File) bool {
	for _, sg := range segs {
		if sg.f == f {
			return true
		}
	}
	return false
}

// removeObsoleteLater asks the remover goroutine for a removeObsolete pass
// without waiting for it; requests made while one is pending coalesce.
func (s *Storage) removeObsoleteLater() {
	select {
	case s.removeKick <- struct{}{}:
	default:
	}
}

// removeLoop is the remover goroutine. A failed pass leaves its error in
// the storage where it matters (a failed sync or deletion fails the
// storage, so writes report it); files it could not delete are retried
// by the next pass.
func (s *Storage) removeLoop() {
	defer close(s.removerDone)
	for {
		select {
		case <-s.removeKick:
			_ = s.removeObsolete()
		case <-s.removerStop:
			select {
			case <-s.removeKick:
				_ = s.removeObsolete()
			default:
			}
			return
		}
	}
}

// deletePause separates the steps of a gradual deletion (Options.DeleteChunk).
const deletePause = 2 * time.Millisecond

// deleteSegment removes the file of a compacted segment: at once, or, with
// Options.DeleteChunk, gradually. A gradual deletion renames the file to a
// temporary name first (recovery deletes such files, so a crash part way
// leaves nothing a reader could take for a torn segment, and deleting
// oldest first keeps the suffix rule), then shortens it a chunk at a time
// and unlinks it. It runs on the remover goroutine, off every write path,
// so its pauses delay nothing but the next removal.
func (s *Storage) deleteSegment(path string) error {
	chunk := s.opts.DeleteChunk
	if chunk <= 0 {
		return os.Remove(path)
	}
	tmp := path + tmpSuffix
	if err := os.Rename(path, tmp); err != nil {
		return err
	}
	if f, err := os.OpenFile(tmp, os.O_WRONLY, 0); err == nil {
		if st, err := f.Stat(); err == nil {
			for size := st.Size(); size > chunk; {
				size -= chunk
				if f.Truncate(size) != nil {
					break // the unlink below still frees the rest
				}
				if s.onDeleteStep != nil {
					s.onDeleteStep(size)
				}
				time.Sleep(deletePause)
			}
		}
		f.Close()
	}
	return os.Remove(tmp)
}
