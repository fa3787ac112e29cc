package rafttest

import (
	"strings"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// logOf builds a durable log for compareLogs: base is the snapshot index
// (term baseTerm); terms are those of the entries above it.
func logOf(id, base, baseTerm, commit uint64, terms ...uint64) *durableLog {
	l := &durableLog{id: id, base: base, commit: commit, terms: []uint64{baseTerm}}
	for i, term := range terms {
		l.terms = append(l.terms, term)
		l.entries = append(l.entries, pb.Entry{Index: base + 1 + uint64(i), Term: term, Data: []byte{byte(term)}})
	}
	return l
}

func TestCompareLogs(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b *durableLog
		want string // substring of the only violation; "" for none
	}{
		{"identical", logOf(1, 2, 1, 4, 1, 1), logOf(2, 2, 1, 4, 1, 1), ""},
		{"uncommitted divergent tails", logOf(1, 2, 1, 3, 1, 2, 2), logOf(2, 2, 1, 3, 1, 3), ""},
		{"one is a prefix", logOf(1, 2, 1, 3, 1), logOf(2, 2, 1, 3, 1, 1, 2), ""},
		{"snapshot on one side", logOf(1, 5, 2, 5), logOf(2, 2, 1, 5, 1, 2, 2), ""},
		{"disjoint ranges", logOf(1, 9, 3, 9), logOf(2, 2, 1, 3, 1), ""},
		{"terms differ below a match", logOf(1, 2, 1, 0, 1, 2, 3), logOf(2, 2, 1, 0, 2, 2, 3), "log matching: index 3"},
		{"committed entries differ", logOf(1, 2, 1, 4, 1, 2), logOf(2, 2, 1, 4, 1, 3), "committed entries disagree: index 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compareLogs(tc.a, tc.b)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("unexpected violations %v", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("got %v, want one violation containing %q", got, tc.want)
			}
		})
	}
}

func TestCompareLogsSameTermDifferentData(t *testing.T) {
	a, b := logOf(1, 2, 1, 0, 1, 1), logOf(2, 2, 1, 0, 1, 1)
	b.entries[0].Data = []byte("other")
	got := compareLogs(a, b)
	if len(got) != 1 || !strings.Contains(got[0], "entry 1/3 differs") {
		t.Fatalf("got %v", got)
	}
}

// bootSnap is a bootstrap snapshot at index with the given voters.
func bootSnap(index uint64, voters ...uint64) pb.Snapshot {
	var s pb.Snapshot
	s.Metadata.Index = index
	s.Metadata.ConfState.Voters = voters
	return s
}
