package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/raftkit/raft/raftpb"
)

func TestReadFrame(t *testing.T) {
	frame := func(n uint32, body string) []byte {
		b := []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
		return append(b, body...)
	}
	tests := []struct {
		name    string
		in      []byte
		max     uint32
		want    string
		wantErr error
	}{
		{"empty frame", frame(0, ""), 8, "", nil},
		{"exactly at the limit", frame(8, "12345678"), 8, "12345678", nil},
		{"one over the limit", frame(9, "123456789"), 8, "", ErrFrameTooLarge},
		{"huge announced length, nothing sent", frame(0xffffffff, ""), 1 << 20, "", ErrFrameTooLarge},
		{"clean end between frames", nil, 8, "", io.EOF},
		{"end inside the prefix", []byte{0, 0}, 8, "", io.ErrUnexpectedEOF},
		{"end inside the payload", frame(5, "12"), 8, "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(tt.in), tt.max, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.want {
				t.Fatalf("payload %q, want %q", got, tt.want)
			}
		})
	}
}

// Frames read back to back from one stream reuse one buffer without one
// frame's bytes leaking into the next.
func TestReadFrameSequenceReusesBuffer(t *testing.T) {
	var stream []byte
	bodies := []string{"a long first payload", "", "mid", "x"}
	for _, b := range bodies {
		stream = appendFrame(stream, []byte(b))
	}
	r := bytes.NewReader(stream)
	var buf []byte
	for _, want := range bodies {
		got, err := readFrame(r, 64, buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("payload %q, want %q", got, want)
		}
		buf = got[:0]
	}
	if _, err := readFrame(r, 64, buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

// Reading frames into a buffer large enough allocates nothing: every
// message a stream receives goes through readFrame, and an allocation there
// (the length prefix's array escaping through the io.Reader did) is paid
// per message.
func TestReadFrameReusedBufferAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	stream := appendFrame(nil, []byte("an append's worth of bytes"))
	stream = appendFrame(stream, []byte("ack"))
	r := bytes.NewReader(stream)
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(stream)
		for i := 0; i < 2; i++ {
			got, err := readFrame(r, 64, buf)
			if err != nil {
				t.Fatal(err)
			}
			buf = got[:0]
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per two frames, want 0", allocs)
	}
}

func TestHandshakeRoundTrip(t *testing.T) {
	h := handshake{version: ProtocolVersion, kind: kindSnapshot, clusterID: 0xdeadbeef, from: 7, to: 1<<64 - 1}
	got, err := readHandshake(bytes.NewReader(h.encode()))
	if err != nil {
		t.Fatal(err)
	}
	if got != h {
		t.Fatalf("decoded %+v, want %+v", got, h)
	}
	bad := h.encode()
	bad[0] = 'X'
	if _, err := readHandshake(bytes.NewReader(bad)); !errors.Is(err, ErrBadHandshake) {
		t.Fatalf("bad magic: %v", err)
	}
	bad = h.encode()
	bad[6] = 9
	if _, err := readHandshake(bytes.NewReader(bad)); !errors.Is(err, ErrBadHandshake) {
		t.Fatalf("bad kind: %v", err)
	}
}

// Every refusal travels as its code and comes back as the same sentinel,
// with the listener's detail attached.
func TestReplyCarriesRefusal(t *testing.T) {
	for _, sentinel := range []error{ErrVersionMismatch, ErrClusterIDMismatch, ErrWrongReceiver, ErrUnknownMember, ErrBadHandshake} {
		err := readReply(bytes.NewReader(encodeReply(sentinel, "because")))
		if !errors.Is(err, sentinel) || !bytes.Contains([]byte(err.Error()), []byte("because")) {
			t.Fatalf("%v came back as %v", sentinel, err)
		}
	}
	if err := readReply(bytes.NewReader(encodeReply(nil, ""))); err != nil {
		t.Fatalf("acceptance came back as %v", err)
	}
	long := string(bytes.Repeat([]byte("x"), 3*maxRejectReason))
	if err := readReply(bytes.NewReader(encodeReply(ErrUnknownMember, long))); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("long reason: %v", err)
	}
}

// FuzzReadFrame: whatever the bytes, the decoder never panics, never returns
// more than the limit, and what it returns re-encodes to the bytes it read.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, []byte("hello")), uint32(16))
	f.Add(appendFrame(nil, nil), uint32(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint32(1<<20))
	f.Add([]byte{0, 0, 0, 9, 1, 2}, uint32(9))
	f.Fuzz(func(t *testing.T, in []byte, max uint32) {
		max %= 1 << 16
		r := bytes.NewReader(in)
		var buf []byte
		off := 0
		for {
			got, err := readFrame(r, max, buf)
			if err != nil {
				if errors.Is(err, ErrFrameTooLarge) || err == io.EOF || err == io.ErrUnexpectedEOF {
					return
				}
				t.Fatalf("unexpected error %v", err)
			}
			if uint32(len(got)) > max {
				t.Fatalf("payload of %d bytes over limit %d", len(got), max)
			}
			enc := appendFrame(nil, got)
			if !bytes.Equal(enc, in[off:off+len(enc)]) {
				t.Fatalf("frame at %d does not re-encode to its input", off)
			}
			off += len(enc)
			buf = got[:0]
		}
	})
}

// FuzzReadHandshake: the hello decoder never panics and accepts only what
// re-encodes to the same bytes (the reserved byte aside).
func FuzzReadHandshake(f *testing.F) {
	f.Add(handshake{version: 1, kind: kindMessages, clusterID: 1, from: 2, to: 3}.encode())
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := readHandshake(bytes.NewReader(in))
		if err != nil {
			return
		}
		want := append([]byte(nil), in[:handshakeLen]...)
		want[7] = 0
		if !bytes.Equal(h.encode(), want) {
			t.Fatalf("decoded %+v re-encodes differently", h)
		}
	})
}

// FuzzDecodeSnapshotHeader: a snapshot header decoder fed anything neither
// panics nor accepts a header that is not a MsgSnap between the stream's
// members within the size limit.
func FuzzDecodeSnapshotHeader(f *testing.F) {
	tr := &Transport{cfg: Config{ID: 2, MaxSnapshotSize: 1 << 20}}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4})
	f.Add(make([]byte, 40))
	valid := raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &raftpb.Snapshot{}}
	body, _ := valid.Marshal()
	f.Add(append([]byte{0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}, body...))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, total, _, err := tr.decodeSnapshotHeader(in, handshake{from: 1})
		if err != nil {
			return
		}
		if m.Snapshot == nil || m.From != 1 || m.To != 2 || total > tr.cfg.MaxSnapshotSize {
			t.Fatalf("accepted a bad header: %+v, %d bytes", m, total)
		}
	})
}
