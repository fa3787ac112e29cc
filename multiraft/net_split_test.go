package multiraft

import (
	"bytes"
	"net"
	"testing"

	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

// TestMergedBatchOverFrameLimitIsSplit checks that a batch merged from
// several queued ones, over the frame limit as a whole, goes out as
// several frames with every item, in order, and that only an item too
// large for any frame on its own is dropped (and counted). Before, the
// whole merged batch was dropped.
func TestMergedBatchOverFrameLimitIsSplit(t *testing.T) {
	const limit = 4096
	nt := &NetTransport{lg: zap.NewNop(), cfg: NetConfig{Stream: transport.BatchStreamConfig{MaxFrameSize: limit}}}
	b := Batch{From: 1}
	for i := 0; i < 40; i++ {
		data := bytes.Repeat([]byte{byte(i)}, 500)
		if i == 17 {
			data = make([]byte, 2*limit) // fits no frame
		}
		b.Items = append(b.Items, Item{Group: GroupID(i + 1), Kind: KindRaft,
			Msg: raftpb.Message{Type: raftpb.MsgApp, To: 2, From: 1, Entries: []raftpb.Entry{{Index: uint64(i + 1), Data: data}}}})
	}
	w, r := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, _, err := nt.writeBatch(w, &b, nil, nil)
		_ = w.Close()
		errc <- err
	}()
	var got []GroupID
	var frames int
	var buf []byte
	for {
		payload, err := transport.ReadFrame(r, limit, buf)
		if err != nil {
			break
		}
		frames++
		dec, err := DecodeBatch(payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range dec.Items {
			got = append(got, it.Group)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if frames < 2 {
		t.Fatalf("%d frame(s) for a batch over the limit", frames)
	}
	if len(got) != 39 {
		t.Fatalf("%d items arrived, want 39 (all but the oversized one)", len(got))
	}
	for i, g := range got {
		want := GroupID(i + 1)
		if i >= 17 {
			want++ // group 18 (index 17) was dropped
		}
		if g != want {
			t.Fatalf("item %d is of group %d, want %d", i, g, want)
		}
	}
	if _, _, dropped := nt.Traffic(); dropped != 1 {
		t.Fatalf("dropped = %d, want 1", dropped)
	}
}
