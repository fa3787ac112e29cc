package main

import (
	"errors"
	"io"
	"log"

	raft "github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal"
)

// persister is a voter's storage as the Ready loop sees it.
type persister interface {
	storage() raft.Storage
	// save makes rd's HardState, entries and snapshot durable as
	// raft.MustSync requires (or just keeps them, in memory).
	save(rd raft.Ready) error
	// snapshot records a snapshot at applied and compacts the log to keep
	// entries behind it.
	snapshot(applied uint64, cs pb.ConfState, keep uint64) error
	close() error
}

func newPersister(dir string, durable bool) (persister, error) {
	if !durable {
		return memPersister{raft.NewMemoryStorage()}, nil
	}
	st, err := wal.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	return walPersister{st}, nil
}

// walPersister is raftkit's wal: one Save per Ready, fsynced when MustSync.
type walPersister struct{ st *wal.Storage }

func (w walPersister) storage() raft.Storage { return w.st }
func (w walPersister) save(rd raft.Ready) error {
	return w.st.Save(rd.HardState, rd.Entries, rd.Snapshot)
}
func (w walPersister) close() error { return w.st.Close() }
func (w walPersister) snapshot(applied uint64, cs pb.ConfState, keep uint64) error {
	if _, err := w.st.CreateSnapshot(applied, &cs, nil); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		return err
	}
	return compact(w.st.Compact, applied, keep)
}

type memPersister struct{ ms *raft.MemoryStorage }

func (m memPersister) storage() raft.Storage { return m.ms }
func (m memPersister) close() error          { return nil }
func (m memPersister) save(rd raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := m.ms.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := m.ms.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	return m.ms.Append(rd.Entries)
}
func (m memPersister) snapshot(applied uint64, cs pb.ConfState, keep uint64) error {
	if _, err := m.ms.CreateSnapshot(applied, &cs, nil); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		return err
	}
	return compact(m.ms.Compact, applied, keep)
}

func compact(fn func(uint64) error, applied, keep uint64) error {
	if applied <= keep {
		return nil
	}
	if err := fn(applied - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	return nil
}

// quietLogger drops raft's informational logs, which would otherwise be
// written (and paid for) differently by each library.
func quietLogger() raft.Logger {
	return &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}
}
