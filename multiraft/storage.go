package multiraft

import (
	"fmt"
	"sync"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Storage is a host's durable store for all its groups. The host reads each
// group's log through the raft.Storage that Open returns, and writes what
// its Readys ask for through SaveBatch, once per batch of groups: an
// implementation over one write-ahead log appends every group's update in
// one record and syncs once (package wal's shared form is meant to), which
// is where hosting many groups saves disk syncs.
//
// The host calls SaveBatch from its workers, one call at a time per group
// but possibly concurrently for disjoint sets of groups (one call per
// worker round); an implementation may merge concurrent calls into one
// sync (group commit). Open and Remove are called from CreateGroup and
// from the worker that drops a removed group.
type Storage interface {
	// Open returns the storage of group g, creating an empty one if the
	// group has no state yet. The raft.Storage must reflect every
	// SaveBatch that returned, as raft.Storage's contract requires.
	Open(g GroupID) (raft.Storage, error)
	// SaveBatch makes the updates durable, in order within each group:
	// for each update its snapshot, then its entries (replacing any
	// conflicting suffix of the group's log), then its HardState. When it
	// returns nil, all of them are durable (at least those with MustSync;
	// an implementation may defer a sync only when no update in the batch
	// needs one). An error stops the host: its groups may no longer
	// assume anything about their disk.
	SaveBatch(updates []GroupUpdate) error
	// Remove deletes group g's state; the host no longer runs it.
	Remove(g GroupID) error
	// Compact stores snap, a snapshot of group g's state machine that
	// the application took at snap.Metadata.Index (applied, with the
	// configuration in force there), and lets the store discard the log
	// up to that index. raft.Storage.Snapshot returns it from then on,
	// and raft sends it to followers that lag behind the log.
	Compact(g GroupID, snap raftpb.Snapshot) error
}

// GroupUpdate is what one Ready of one group asks to persist.
type GroupUpdate struct {
	Group GroupID
	// HardState is empty (raft.IsEmptyHardState) when it did not change.
	HardState raftpb.HardState
	// Entries are appended after truncating the log at their first index.
	Entries []raftpb.Entry
	// Snapshot is empty (raft.IsEmptySnap) unless the group received one.
	Snapshot raftpb.Snapshot
	// MustSync says the update needs a disk sync before messages that
	// depend on it are sent (raft.MustSync).
	MustSync bool
}

// MemStorage is a Storage held in memory, over one raft.MemoryStorage per
// group: for tests and simulations, where "durable" means "survives a
// host's restart in the same process". It counts SaveBatch calls so that
// tests can check batching.
type MemStorage struct {
	mu      sync.Mutex
	groups  map[GroupID]*raft.MemoryStorage
	batches int
	updates int
}

// NewMemStorage returns an empty MemStorage.
func NewMemStorage() *MemStorage {
	return &MemStorage{groups: make(map[GroupID]*raft.MemoryStorage)}
}

var _ Storage = (*MemStorage)(nil)

// Open implements Storage.
func (s *MemStorage) Open(g GroupID) (raft.Storage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms, ok := s.groups[g]
	if !ok {
		ms = raft.NewMemoryStorage()
		s.groups[g] = ms
	}
	return ms, nil
}

// SaveBatch implements Storage.
func (s *MemStorage) SaveBatch(updates []GroupUpdate) error {
	s.mu.Lock()
	s.batches++
	s.updates += len(updates)
	stores := make([]*raft.MemoryStorage, len(updates))
	for i, u := range updates {
		stores[i] = s.groups[u.Group]
	}
	s.mu.Unlock()
	for i, u := range updates {
		ms := stores[i]
		if ms == nil {
			return fmt.Errorf("multiraft: saving group %d: not open", u.Group)
		}
		if err := saveOne(ms, u); err != nil {
			return fmt.Errorf("multiraft: saving group %d: %w", u.Group, err)
		}
	}
	return nil
}

func saveOne(ms *raft.MemoryStorage, u GroupUpdate) error {
	if !raft.IsEmptySnap(u.Snapshot) {
		if err := ms.ApplySnapshot(u.Snapshot); err != nil {
			return err
		}
	}
	if len(u.Entries) > 0 {
		if err := ms.Append(u.Entries); err != nil {
			return err
		}
	}
	if !raft.IsEmptyHardState(u.HardState) {
		return ms.SetHardState(u.HardState)
	}
	return nil
}

// Remove implements Storage.
func (s *MemStorage) Remove(g GroupID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, g)
	return nil
}

// Compact implements Storage.
func (s *MemStorage) Compact(g GroupID, snap raftpb.Snapshot) error {
	s.mu.Lock()
	ms := s.groups[g]
	s.mu.Unlock()
	if ms == nil {
		return fmt.Errorf("multiraft: compacting group %d: not open", g)
	}
	cs := snap.Metadata.ConfState
	if _, err := ms.CreateSnapshot(snap.Metadata.Index, &cs, snap.Data); err != nil {
		return fmt.Errorf("multiraft: compacting group %d: %w", g, err)
	}
	if err := ms.Compact(snap.Metadata.Index); err != nil {
		return fmt.Errorf("multiraft: compacting group %d: %w", g, err)
	}
	return nil
}

// Batches returns the number of SaveBatch calls and of group updates they
// carried so far.
func (s *MemStorage) Batches() (calls, updates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches, s.updates
}
