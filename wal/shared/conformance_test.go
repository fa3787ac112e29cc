package shared

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// The conformance test drives the groups of one WAL and a MemoryStorage per
// group with the same random, seeded operations (appends that overwrite
// suffixes, HardStates, batches across groups, compactions, snapshots
// created and installed, group removal and re-creation, reopening the WAL)
// and compares every raft.Storage answer after each step. Tiny segments
// and caches make rotation, relocation, segment deletion and reads from
// disk happen all the time.

var tinyOptions = Options{SegmentSize: 4 << 10, MaxSegments: 3, GroupCacheSize: 300, CacheSize: 2000, NoSync: true}

type conformance struct {
	t      *testing.T
	rng    *rand.Rand
	dir    string
	opts   Options
	w      *WAL
	models map[uint64]*raft.MemoryStorage
	ids    []uint64
}

func TestConformanceWithMemoryStorage(t *testing.T) {
	steps := 600
	if testing.Short() || raceEnabled {
		steps = 200
	}
	for seed := int64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			c := &conformance{t: t, rng: rand.New(rand.NewSource(seed)), dir: t.TempDir(), opts: tinyOptions, models: map[uint64]*raft.MemoryStorage{}}
			if seed%2 == 0 {
				c.opts.GroupCacheSize = -1 // every read from disk
			}
			c.w = openTest(t, c.dir, &c.opts)
			for id := uint64(1); id <= 4; id++ {
				c.create(id)
			}
			for k := 0; k < steps; k++ {
				what := c.step()
				c.compareAll(fmt.Sprintf("step %d (%s)", k, what))
			}
			st := c.w.Stats()
			t.Logf("segments=%d relocated=%d batches=%d", st.Segments, st.Relocated, st.Batches)
		})
	}
}

func (c *conformance) create(id uint64) {
	mustCreate(c.t, c.w, id)
	c.models[id] = raft.NewMemoryStorage()
	c.ids = append(c.ids, id)
}

func (c *conformance) pick() uint64 { return c.ids[c.rng.Intn(len(c.ids))] }

// step does one random operation on both sides and names it.
func (c *conformance) step() string {
	id := c.pick()
	g, m := mustGroup(c.t, c.w, id), c.models[id]
	switch n := c.rng.Intn(100); {
	case n < 35:
		es := c.randomEntries(m)
		require.NoError(c.t, g.Append(es))
		require.NoError(c.t, m.Append(es))
		return "append"
	case n < 50:
		return c.batch()
	case n < 58:
		hs := c.randomHardState(m)
		require.NoError(c.t, g.SetHardState(hs))
		require.NoError(c.t, m.SetHardState(hs))
		return "hardstate"
	case n < 70:
		first, last := bounds(m)
		i := first - 1 + uint64(c.rng.Intn(int(last-first+2)))
		same(c.t, m.Compact(i), g.Compact(i), "compact")
		return fmt.Sprintf("compact %d to %d", id, i)
	case n < 78:
		first, last := bounds(m)
		i := first - 1 + uint64(c.rng.Intn(int(last-first+2)))
		cs := &pb.ConfState{Voters: []uint64{1, uint64(c.rng.Intn(5) + 2)}}
		if c.rng.Intn(2) == 0 {
			cs = nil
		}
		data := []byte(fmt.Sprintf("snap-%d", i))
		_, errM := m.CreateSnapshot(i, cs, data)
		_, errG := g.CreateSnapshot(i, cs, data)
		same(c.t, errM, errG, "create snapshot")
		return fmt.Sprintf("create snapshot %d at %d", id, i)
	case n < 84:
		snap := c.randomSnapshot(m)
		same(c.t, m.ApplySnapshot(snap), g.ApplySnapshot(snap), "apply snapshot")
		return fmt.Sprintf("apply snapshot %d at %d", id, snap.Metadata.Index)
	case n < 88:
		return c.recreate(id)
	default:
		require.NoError(c.t, c.w.Close())
		c.w = openTest(c.t, c.dir, &c.opts)
		return "reopen"
	}
}

// batch saves updates of several groups, some twice, in one SaveBatch.
func (c *conformance) batch() string {
	var ups []GroupUpdate
	for k := c.rng.Intn(5) + 1; k > 0; k-- {
		id := c.pick()
		m := c.models[id]
		u := GroupUpdate{GroupID: id, Entries: c.randomEntries(m), HardState: c.randomHardState(m)}
		if c.rng.Intn(8) == 0 {
			u.Snapshot = c.randomSnapshot(m)
			if u.Snapshot.Metadata.Index <= mustSnapIndex(m) {
				u.Snapshot = pb.Snapshot{}
			} else {
				require.NoError(c.t, m.ApplySnapshot(u.Snapshot))
			}
		}
		_, last := bounds(m)
		if len(u.Entries) > 0 && u.Entries[0].Index > last+1 {
			u.Entries = nil // the snapshot moved the log past them
		}
		require.NoError(c.t, m.Append(u.Entries))
		require.NoError(c.t, m.SetHardState(u.HardState))
		ups = append(ups, u)
	}
	require.NoError(c.t, c.w.SaveBatch(ups))
	return fmt.Sprintf("batch of %d", len(ups))
}

func (c *conformance) recreate(id uint64) string {
	require.NoError(c.t, c.w.RemoveGroup(id))
	_, err := c.w.Group(id)
	require.ErrorIs(c.t, err, ErrNoGroup)
	mustCreate(c.t, c.w, id)
	c.models[id] = raft.NewMemoryStorage()
	return fmt.Sprintf("remove and recreate %d", id)
}

func mustSnapIndex(m *raft.MemoryStorage) uint64 {
	s, _ := m.Snapshot()
	return s.Metadata.Index
}

func bounds(m *raft.MemoryStorage) (first, last uint64) {
	first, _ = m.FirstIndex()
	last, _ = m.LastIndex()
	return first, last
}

// randomEntries starts anywhere from a bit below the first index to just
// after the last, with terms not below the term before them.
func (c *conformance) randomEntries(m *raft.MemoryStorage) []pb.Entry {
	first, last := bounds(m)
	lo := max(first, 3) - 2 + uint64(c.rng.Intn(int(last-max(first, 3)+4)))
	prev, err := m.Term(lo - 1)
	if err != nil {
		prev = 1
	}
	n := c.rng.Intn(6) + 1
	out := make([]pb.Entry, n)
	term := prev + uint64(c.rng.Intn(2))
	for k := range out {
		size := c.rng.Intn(40)
		if c.rng.Intn(20) == 0 {
			size = 1500
		}
		var data []byte // nil when empty: the WAL decodes empty data as nil
		if size > 0 {
			data = make([]byte, size)
			c.rng.Read(data)
		}
		out[k] = pb.Entry{Index: lo + uint64(k), Term: term, Data: data}
		if c.rng.Intn(4) == 0 {
			term++
		}
	}
	return out
}

func (c *conformance) randomHardState(m *raft.MemoryStorage) pb.HardState {
	hs, _, _ := m.InitialState()
	_, last := bounds(m)
	// Never empty: raft's empty HardState means "unchanged", which the
	// WAL honours and MemoryStorage.SetHardState does not.
	hs.Term = max(hs.Term, 1) + uint64(c.rng.Intn(2))
	hs.Vote = uint64(c.rng.Intn(3))
	hs.Commit = max(hs.Commit, uint64(c.rng.Int63n(int64(last+1))))
	return hs
}

func (c *conformance) randomSnapshot(m *raft.MemoryStorage) pb.Snapshot {
	_, last := bounds(m)
	i := max(mustSnapIndex(m), last, 2) - 1 + uint64(c.rng.Intn(8))
	return pb.Snapshot{Data: []byte(fmt.Sprintf("installed-%d", i)), Metadata: pb.SnapshotMetadata{
		Index: i, Term: 10 + i, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}},
	}}
}

func same(t *testing.T, want, got error, what string) {
	t.Helper()
	if want == nil {
		require.NoError(t, got, what)
		return
	}
	require.Error(t, got, what)
	for _, sentinel := range []error{raft.ErrCompacted, raft.ErrSnapOutOfDate, raft.ErrUnavailable} {
		require.Equal(t, errors.Is(want, sentinel), errors.Is(got, sentinel), "%s: want %v, got %v", what, want, got)
	}
}

// compareAll compares every group's view with its model.
func (c *conformance) compareAll(when string) {
	checkPins(c.t, c.w)
	for _, id := range c.ids {
		c.compare(id, mustGroup(c.t, c.w, id), c.models[id], when)
	}
}

func (c *conformance) compare(id uint64, g *Group, m *raft.MemoryStorage, when string) {
	t := c.t
	where := fmt.Sprintf("%s, group %d", when, id)
	hsM, csM, _ := m.InitialState()
	hsG, csG, err := g.InitialState()
	require.NoError(t, err, where)
	require.Equal(t, hsM, hsG, where)
	require.True(t, sameMetadata(pb.SnapshotMetadata{ConfState: csM}, pb.SnapshotMetadata{ConfState: csG}), "%s: ConfState %v vs %v", where, csM, csG)
	first, last := bounds(m)
	fG, _ := g.FirstIndex()
	lG, _ := g.LastIndex()
	require.Equal(t, [2]uint64{first, last}, [2]uint64{fG, lG}, "%s: bounds", where)
	// The lock-free bounds (raft.StorageBounds) agree with both the locked
	// reads and the model's, after every kind of change and after reopening.
	bf, bl, blt := g.LogBounds()
	mf, ml, mlt := m.LogBounds()
	require.Equal(t, [3]uint64{mf, ml, mlt}, [3]uint64{bf, bl, blt}, "%s: LogBounds", where)
	tG, err := g.Term(lG)
	require.NoError(t, err, where)
	require.Equal(t, [3]uint64{fG, lG, tG}, [3]uint64{bf, bl, blt}, "%s: LogBounds against FirstIndex, LastIndex, Term", where)
	for i := first - 1; i <= last+1; i++ {
		tm, errM := m.Term(i)
		tg, errG := g.Term(i)
		same(t, errM, errG, where+" term")
		require.Equal(t, tm, tg, "%s: term of %d", where, i)
	}
	if last >= first {
		lo := first + uint64(c.rng.Intn(int(last-first+1)))
		hi := lo + uint64(c.rng.Intn(int(last-lo+2)))
		maxSize := uint64(c.rng.Intn(400))
		em, errM := m.Entries(lo, hi, maxSize)
		eg, errG := g.Entries(lo, hi, maxSize)
		same(t, errM, errG, where+" entries")
		require.Equal(t, len(em), len(eg), "%s: entries [%d, %d) max %d", where, lo, hi, maxSize)
		for k := range em {
			require.Equal(t, em[k].Index, eg[k].Index, where)
			require.Equal(t, em[k].Term, eg[k].Term, where)
			require.Equal(t, string(em[k].Data), string(eg[k].Data), where)
		}
	}
	sm, _ := m.Snapshot()
	sg, err := g.Snapshot()
	require.NoError(t, err, where)
	bm, _ := sm.Marshal()
	bg, _ := sg.Marshal()
	require.Equal(t, bm, bg, "%s: snapshot", where)
}
