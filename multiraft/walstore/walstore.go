// Package walstore persists every group of a multiraft.Host in one shared
// write-ahead log (package wal/shared): each worker round of the host
// becomes one SaveBatch of the WAL, so the groups of a round, and the
// rounds of concurrent workers (group commit), share their appends and
// fsyncs.
//
// It is a separate package so that multiraft itself does not depend on
// the WAL. Use it as:
//
//	w, err := shared.Open(dir, nil)
//	...
//	h, err := multiraft.New(multiraft.HostConfig{Storage: walstore.New(w), ...})
//
// Host.Compact reaches the WAL as a snapshot file plus a compaction of the
// group's log, which frees the segments no live group needs any more.
//
// After a restart, open the WAL again, start a Host over walstore.New of
// it and call CreateGroup for each ID of w.GroupIDs(): every group
// resumes from its HardState, log and snapshot. The caller owns the WAL
// and closes it after the Host.
package walstore

import (
	"errors"
	"fmt"
	"sync"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal/shared"
)

// Store is a multiraft.Storage over a *shared.WAL.
type Store struct {
	w *shared.WAL
	// scratch holds the []shared.GroupUpdate SaveBatch converts a round
	// into, for reuse: a round of hundreds of groups would otherwise
	// allocate tens of kilobytes for it every time. A pool, since the
	// host's workers may save concurrently.
	scratch sync.Pool
}

var _ multiraft.Storage = (*Store)(nil)

// New returns a Store writing to w.
func New(w *shared.WAL) *Store { return &Store{w: w} }

// WAL returns the underlying log (for Stats, GroupIDs, Close).
func (s *Store) WAL() *shared.WAL { return s.w }

// Open implements multiraft.Storage: the group's view of the WAL, created
// empty if the WAL has no such group. A new group's creation is not synced
// by itself; it becomes durable with the group's first synced write.
func (s *Store) Open(g multiraft.GroupID) (raft.Storage, error) {
	return s.w.OpenGroup(uint64(g))
}

// SaveBatch implements multiraft.Storage with one shared.WAL.SaveBatch for
// all the updates. The WAL decides which updates need an fsync
// (raft.MustSync, snapshot installs), so GroupUpdate.MustSync is not used.
func (s *Store) SaveBatch(updates []multiraft.GroupUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	p, _ := s.scratch.Get().(*[]shared.GroupUpdate)
	if p == nil {
		p = new([]shared.GroupUpdate)
	}
	us := (*p)[:0]
	for i := range updates {
		u := &updates[i]
		us = append(us, shared.GroupUpdate{GroupID: uint64(u.Group), HardState: u.HardState,
			Entries: u.Entries, Snapshot: u.Snapshot})
	}
	err := s.w.SaveBatch(us)
	// The WAL keeps no reference to us; clear it so that the pool holds
	// no entries or snapshots alive.
	clear(us)
	*p = us[:0]
	s.scratch.Put(p)
	return err
}

// Compact implements multiraft.Storage: the snapshot is written to its
// file and recorded durably, then the group's log is compacted up to it
// (the compaction itself is not waited for; losing it in a crash only
// keeps entries longer).
func (s *Store) Compact(g multiraft.GroupID, snap raftpb.Snapshot) error {
	v, err := s.w.Group(uint64(g))
	if err != nil {
		return err
	}
	md := snap.Metadata
	if _, err := v.CreateSnapshot(md.Index, &md.ConfState, snap.Data); err != nil {
		return fmt.Errorf("walstore: snapshot of group %d at %d: %w", g, md.Index, err)
	}
	if err := v.Compact(md.Index); err != nil {
		return fmt.Errorf("walstore: compacting group %d at %d: %w", g, md.Index, err)
	}
	return nil
}

// Remove implements multiraft.Storage: the group's log, HardState and
// snapshot are deleted, durably. Removing a group the WAL does not have is
// not an error.
func (s *Store) Remove(g multiraft.GroupID) error {
	err := s.w.RemoveGroup(uint64(g))
	if errors.Is(err, shared.ErrNoGroup) {
		return nil
	}
	return err
}
