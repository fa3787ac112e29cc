package raftpb

import (
	"bytes"
	"testing"
)

// FuzzMessageUnmarshal feeds arbitrary bytes to the decoder: it may reject
// them, but it must never panic, and whatever it accepts must encode to bytes
// that decode to the same value again.
func FuzzMessageUnmarshal(f *testing.F) {
	seeds := []Message{
		{},
		{Type: MsgApp, To: 2, From: 1, Term: 3, LogTerm: 2, Index: 9, Commit: 8,
			Entries: []Entry{{Term: 3, Index: 10, Data: []byte("x")}, {Term: 3, Index: 11, Type: EntryConfChangeV2}}},
		{Type: MsgSnap, Snapshot: &Snapshot{Data: []byte("s"), Metadata: SnapshotMetadata{Index: 5, Term: 2, ConfState: ConfState{Voters: []uint64{1, 2}}}}},
		{Type: MsgStorageAppend, Responses: []Message{{Type: MsgAppResp, Reject: true, RejectHint: 4}}},
	}
	for _, m := range seeds {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		if err := m.Unmarshal(data); err != nil {
			return
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("re-marshal of an accepted message failed: %v", err)
		}
		if len(again) != m.Size() {
			t.Fatalf("Size %d disagrees with Marshal length %d", m.Size(), len(again))
		}
		var m2 Message
		if err := m2.Unmarshal(again); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		third, _ := m2.Marshal()
		if !bytes.Equal(again, third) {
			t.Fatalf("encoding is not stable across a round trip")
		}
	})
}

// FuzzConfChangesFromString checks that the textual form never panics and
// that whatever parses prints back to a string that parses to the same list.
func FuzzConfChangesFromString(f *testing.F) {
	for _, s := range []string{"", "v1 l2 r3 u4", "v", "x1", "v1  v2", "v99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ccs, err := ConfChangesFromString(s)
		if err != nil {
			return
		}
		back, err := ConfChangesFromString(ConfChangesToString(ccs))
		if err != nil || len(back) != len(ccs) {
			t.Fatalf("%q parsed to %v, which did not print back: %v", s, ccs, err)
		}
		for i := range ccs {
			if ccs[i] != back[i] {
				t.Fatalf("%q: change %d differs after a round trip: %v vs %v", s, i, ccs[i], back[i])
			}
		}
	})
}
