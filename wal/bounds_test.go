package wal

import (
	"math/rand"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// TestLogBoundsFollowWrites checks that LogBounds answers what FirstIndex,
// LastIndex and Term(LastIndex()) answer after every kind of write (append,
// truncate, compact, snapshot) and after reopening, since raft reads the
// bounds through it instead of the interface.
func TestLogBoundsFollowWrites(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &Options{NoPreallocate: true})
	check := func(what string) {
		t.Helper()
		first, err1 := s.FirstIndex()
		last, err2 := s.LastIndex()
		term, err3 := s.Term(last)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("%s: %v %v %v", what, err1, err2, err3)
		}
		f, l, lt := s.LogBounds()
		if f != first || l != last || lt != term {
			t.Fatalf("%s: LogBounds = %d %d %d, interface says %d %d %d", what, f, l, lt, first, last, term)
		}
	}
	check("empty")
	rng := rand.New(rand.NewSource(3))
	term := uint64(1)
	for step := 0; step < 300; step++ {
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		switch op := rng.Intn(10); {
		case op < 6:
			from := first + uint64(rng.Int63n(int64(last-first+2)))
			term++
			var ents []pb.Entry
			for i := from; i <= from+uint64(rng.Intn(4)); i++ {
				ents = append(ents, pb.Entry{Index: i, Term: term, Data: []byte("x")})
			}
			if err := s.Append(ents); err != nil {
				t.Fatal(err)
			}
			check("append")
		case op < 8:
			if last >= first {
				if err := s.Compact(first + uint64(rng.Int63n(int64(last-first+1)))); err != nil {
					t.Fatal(err)
				}
				check("compact")
			}
		default:
			term++
			snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: last + uint64(rng.Intn(5)) + 1, Term: term}}
			if err := s.ApplySnapshot(snap); err != nil {
				t.Fatal(err)
			}
			check("apply snapshot")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, &Options{NoPreallocate: true})
	check("reopened")
}
