package transport

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// decodeCases are messages whose decoding must come out as the generated
// Unmarshal's: entries with Data, with an empty Data and without one,
// other fields before and after the entries, nested responses.
func decodeCases() []raftpb.Message {
	return []raftpb.Message{
		{Type: raftpb.MsgHeartbeat, To: 2, From: 1, Term: 3, Commit: 9},
		{Type: raftpb.MsgApp, To: 2, From: 1, Term: 3, LogTerm: 3, Index: 7, Commit: 7,
			Entries: []raftpb.Entry{
				{Term: 3, Index: 8, Data: []byte("first")},
				{Term: 3, Index: 9},
				{Term: 3, Index: 10, Data: []byte{}},
				{Term: 3, Index: 11, Type: raftpb.EntryConfChange, Data: []byte("cc")},
			}},
		{Type: raftpb.MsgApp, To: 3, From: 1, Term: 4, Context: []byte("ctx"),
			Entries: []raftpb.Entry{{Term: 4, Index: 1, Data: make([]byte, 4096)}}},
		{Type: raftpb.MsgStorageAppend, To: 1<<64 - 1, Term: 2,
			Entries:   []raftpb.Entry{{Term: 2, Index: 5, Data: []byte("x")}},
			Responses: []raftpb.Message{{Type: raftpb.MsgAppResp, To: 1, Entries: []raftpb.Entry{{Index: 5, Data: []byte("y")}}}}},
	}
}

func TestDecoderMatchesUnmarshal(t *testing.T) {
	var d decoder
	for _, want := range decodeCases() {
		b, err := want.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var ref, got raftpb.Message
		if err := ref.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if err := d.decode(b, &got); err != nil {
			t.Fatalf("%s: %v", want.Type, err)
		}
		if !reflect.DeepEqual(got, ref) {
			t.Fatalf("%s: decoded\n%+v\nUnmarshal gives\n%+v", want.Type, got, ref)
		}
		// Nothing aliases the frame: the stream reuses it.
		clear(b)
		if !reflect.DeepEqual(got, ref) {
			t.Fatalf("%s: the decoded message changed with the frame", want.Type)
		}
	}
}

// The entries' Data share one array, and appending to one entry's Data
// does not write into the next one's.
func TestDecoderSharesOneArrayPerMessage(t *testing.T) {
	m := raftpb.Message{Type: raftpb.MsgApp, To: 2, From: 1}
	for i := 0; i < 8; i++ {
		m.Entries = append(m.Entries, raftpb.Entry{Index: uint64(i + 1), Data: []byte{byte(i), 1, 2, 3}})
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var d decoder
	var got raftpb.Message
	if err := d.decode(b, &got); err != nil {
		t.Fatal(err)
	}
	_ = append(got.Entries[0].Data, 9)
	if got.Entries[1].Data[0] != 1 {
		t.Fatalf("appending to entry 1's Data overwrote entry 2's: %v", got.Entries[1].Data)
	}
	if raceEnabled {
		return
	}
	allocs := testing.AllocsPerRun(50, func() {
		var got raftpb.Message
		if err := d.decode(b, &got); err != nil {
			t.Fatal(err)
		}
	})
	// The entries array and one array for their Data, where the
	// generated Unmarshal allocates one per entry besides.
	if allocs > 2 {
		t.Fatalf("%v allocations to decode 8 entries, want 2", allocs)
	}
}

// FuzzDecoder: on any bytes, decode gives what Message.Unmarshal gives,
// the message or an error.
func FuzzDecoder(f *testing.F) {
	for _, m := range decodeCases() {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{0x3a, 0x80, 0x80, 0x80, 0x80, 0x10}) // entries, huge length
	f.Add([]byte{0xfa, 0xff, 0xff, 0xff, 0x1f, 0x00}) // field 7 beyond 32 bits
	var d decoder
	f.Fuzz(func(t *testing.T, b []byte) {
		var ref, got raftpb.Message
		refErr := ref.Unmarshal(b)
		err := d.decode(b, &got)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("decode error %v, Unmarshal error %v", err, refErr)
		}
		if err == nil && !reflect.DeepEqual(got, ref) {
			t.Fatalf("decoded\n%+v\nUnmarshal gives\n%+v", got, ref)
		}
	})
}

// BenchmarkDecode compares the decoder with the generated Unmarshal on a
// follower's typical frame: an append of a few 128-byte entries.
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1, 4, 64} {
		m := raftpb.Message{Type: raftpb.MsgApp, To: 2, From: 1, Term: 5, LogTerm: 5, Index: 100, Commit: 100}
		for i := 0; i < n; i++ {
			m.Entries = append(m.Entries, raftpb.Entry{Term: 5, Index: uint64(101 + i), Data: make([]byte, 128)})
		}
		frame, err := m.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("entries=%d/decoder", n), func(b *testing.B) {
			b.ReportAllocs()
			var d decoder
			for i := 0; i < b.N; i++ {
				var got raftpb.Message
				if err := d.decode(frame, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("entries=%d/unmarshal", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var got raftpb.Message
				if err := got.Unmarshal(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
