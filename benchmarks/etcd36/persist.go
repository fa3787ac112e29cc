package main

import (
	"errors"
	"io"
	"log"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
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
	mem := &memPersister{raft.NewMemoryStorage()}
	if !durable {
		return mem, nil
	}
	w, err := wal.Create(zap.NewNop(), dir+"/wal", nil)
	if err != nil {
		return nil, err
	}
	return &walPersister{mem: mem, w: w}, nil
}

// walPersister is etcd's production pairing: the WAL for durability (Save
// fsyncs when raft.MustSync), MemoryStorage for raft's reads, snapshots
// recorded in the WAL and old segments released, as etcd server does.
type walPersister struct {
	mem *memPersister
	w   *wal.WAL
}

func (p *walPersister) storage() raft.Storage { return p.mem.ms }
func (p *walPersister) close() error          { return p.w.Close() }
func (p *walPersister) save(rd raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		md := rd.Snapshot.Metadata
		if err := p.w.SaveSnapshot(walpb.Snapshot{Index: md.Index, Term: md.Term, ConfState: &md.ConfState}); err != nil {
			return err
		}
	}
	if err := p.w.Save(rd.HardState, rd.Entries); err != nil {
		return err
	}
	return p.mem.save(rd)
}
func (p *walPersister) snapshot(applied uint64, cs pb.ConfState, keep uint64) error {
	snap, err := p.mem.ms.CreateSnapshot(applied, &cs, nil)
	if err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return err
	}
	md := snap.Metadata
	if err := p.w.SaveSnapshot(walpb.Snapshot{Index: md.Index, Term: md.Term, ConfState: &md.ConfState}); err != nil {
		return err
	}
	if err := compact(p.mem.ms.Compact, applied, keep); err != nil {
		return err
	}
	return p.w.ReleaseLockTo(md.Index)
}

type memPersister struct{ ms *raft.MemoryStorage }

func (m *memPersister) storage() raft.Storage { return m.ms }
func (m *memPersister) close() error          { return nil }
func (m *memPersister) save(rd raft.Ready) error {
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
func (m *memPersister) snapshot(applied uint64, cs pb.ConfState, keep uint64) error {
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
