package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

func TestLogSlice(t *testing.T) {
	for _, tc := range []struct {
		name     string
		s        logSlice
		wantLast entryID
		valid    bool
	}{
		{
			name: "empty", s: logSlice{term: 3, prev: entryID{term: 2, index: 7}},
			wantLast: entryID{term: 2, index: 7}, valid: true,
		},
		{
			name: "terms rise", s: logSlice{term: 5, prev: entryID{term: 1, index: 2}, entries: cat(termRun(1, 3, 3), termRun(4, 4, 5))},
			wantLast: entryID{term: 4, index: 5}, valid: true,
		},
		{
			name: "leader's own term", s: logSlice{term: 4, prev: entryID{term: 4, index: 2}, entries: termRun(4, 3, 4)},
			wantLast: entryID{term: 4, index: 4}, valid: true,
		},
		{
			name: "gap after prev", s: logSlice{term: 5, prev: entryID{term: 1, index: 2}, entries: termRun(1, 4, 4)},
			wantLast: entryID{term: 1, index: 4},
		},
		{
			name: "gap inside", s: logSlice{term: 5, prev: entryID{term: 1, index: 2}, entries: cat(termRun(1, 3, 3), termRun(1, 5, 5))},
			wantLast: entryID{term: 1, index: 5},
		},
		{
			name: "term below prev", s: logSlice{term: 5, prev: entryID{term: 3, index: 2}, entries: termRun(2, 3, 3)},
			wantLast: entryID{term: 2, index: 3},
		},
		{
			name: "term falls", s: logSlice{term: 5, prev: entryID{term: 1, index: 2}, entries: cat(termRun(3, 3, 3), termRun(2, 4, 4))},
			wantLast: entryID{term: 2, index: 4},
		},
		{
			name: "entry from a later term", s: logSlice{term: 2, prev: entryID{term: 1, index: 2}, entries: termRun(3, 3, 3)},
			wantLast: entryID{term: 3, index: 3},
		},
		{
			name: "prev from a later term", s: logSlice{term: 2, prev: entryID{term: 3, index: 2}},
			wantLast: entryID{term: 3, index: 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.wantLast, tc.s.lastID())
			require.Equal(t, tc.s.prev.index+uint64(len(tc.s.entries)), tc.s.endIndex())
			if tc.valid {
				require.NoError(t, tc.s.check())
			} else {
				require.Error(t, tc.s.check())
			}
		})
	}
	require.Equal(t, entryID{term: 4, index: 9}, idOfEntry(&pb.Entry{Term: 4, Index: 9, Data: []byte("x")}))
}
