package kvservice

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCommandCodecRoundTrip(t *testing.T) {
	expect := "old"
	empty := ""
	for _, c := range []command{
		{Node: 1, Req: 1 << 62, Op: opPut, Key: "k", Value: "v"},
		{Node: 3, Req: 7, Op: opDelete, Key: "a/b"},
		{Node: 2, Req: 9, Op: opCAS, Key: "k", Value: "new", Expect: &expect},
		{Node: 2, Req: 10, Op: opCAS, Key: "k", Value: "", Expect: &empty},
		{Op: opHello, Value: "64"},
		{Op: "future-op", Key: string([]byte{0, 1, 0xff}), Value: string(make([]byte, 300))},
	} {
		got, err := decodeCommand(encodeCommand(c))
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip: got %+v, want %+v", got, c)
		}
	}
}

// Entries written as JSON (the single-group server, and sharded members
// before the binary form) still decode.
func TestCommandCodecReadsJSON(t *testing.T) {
	expect := "x"
	c := command{Node: 4, Req: 5, Op: opCAS, Key: "k", Value: "v", Expect: &expect}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCommand(data)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("got %+v, %v; want %+v", got, err, c)
	}
}

// Every truncation, and trailing or bad flag bytes, is an error, not a
// panic.
func TestCommandCodecRejectsMalformed(t *testing.T) {
	expect := "e"
	full := encodeCommand(command{Node: 300, Req: 1 << 40, Op: opCAS, Key: "key", Value: "value", Expect: &expect})
	for n := 1; n < len(full); n++ {
		if _, err := decodeCommand(full[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: decoded", n, len(full))
		}
	}
	if _, err := decodeCommand(append(full[:len(full):len(full)], 0)); err == nil {
		t.Fatal("trailing byte: decoded")
	}
	noExpect := encodeCommand(command{Op: opPut, Key: "k"})
	noExpect[len(noExpect)-1] = 2
	if _, err := decodeCommand(noExpect); err == nil {
		t.Fatal("bad expect flag: decoded")
	}
	huge := []byte{codecBinary, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := decodeCommand(huge); err == nil {
		t.Fatal("length past the end: decoded")
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(encodeCommand(command{Node: 1, Req: 2, Op: opPut, Key: "k", Value: "v"}))
	f.Add([]byte(`{"op":"put","key":"k"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommand(data)
		if err != nil || len(data) == 0 || data[0] != codecBinary {
			return
		}
		if got, err := decodeCommand(encodeCommand(c)); err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("re-encoding %+v: %+v, %v", c, got, err)
		}
	})
}
