package transport

import (
	"encoding/binary"

	"github.com/raftkit/raft/raftpb"
)

// entriesField is the protobuf field number of Message.Entries.
const entriesField = 7

// decoder decodes the frames of one inbound stream into messages. It gives
// the entries of a message one shared array for their Data: the generated
// Unmarshal copies each entry's Data into an allocation of its own, which
// at a follower is one allocation per replicated entry. The entries of one
// message arrive, are stored and are compacted together, so the shared
// array holds little memory longer than separate ones would.
//
// The result is the one Message.Unmarshal gives, field for field (a Data
// that is absent stays nil, an empty one is empty), and so is the error:
// whatever the decoder does not follow goes to Message.Unmarshal whole.
type decoder struct {
	// Scratch, reused from frame to frame: the frame without its entries,
	// and where each entry lies in the frame.
	rest  []byte
	spans [][2]int
}

// decode decodes payload into m, which must be zero. Nothing in m aliases
// payload.
func (d *decoder) decode(payload []byte, m *raftpb.Message) error {
	defer d.trim()
	if !d.split(payload) || len(d.spans) == 0 {
		return m.Unmarshal(payload)
	}
	if err := d.decodeSplit(payload, m); err != nil {
		// Let the generated code find the error, so that it is the
		// error it would have reported.
		*m = raftpb.Message{}
		return m.Unmarshal(payload)
	}
	return nil
}

// decodeSplit decodes what split found: the rest of the message, then the
// entries, their Data in one array.
func (d *decoder) decodeSplit(payload []byte, m *raftpb.Message) error {
	if err := m.Unmarshal(d.rest); err != nil {
		return err
	}
	total := 0
	for _, sp := range d.spans {
		total += sp[1] - sp[0]
	}
	// An entry's Data is shorter than its encoding, so the entries'
	// encodings' total bounds their Data's.
	slab := make([]byte, total)
	m.Entries = make([]raftpb.Entry, len(d.spans))
	off := 0
	for k, sp := range d.spans {
		e := &m.Entries[k]
		enc := payload[sp[0]:sp[1]]
		// The generated code appends Data to e.Data[:0], which has room
		// for it: it lands in the slab.
		e.Data = slab[off:off:len(slab)]
		if err := e.Unmarshal(enc); err != nil {
			return err
		}
		n := len(e.Data)
		switch {
		case n > 0:
			e.Data = slab[off : off+n : off+n]
			off += n
		case hasField(enc, 4):
			e.Data = []byte{}
		default:
			e.Data = nil
		}
	}
	return nil
}

// split walks the top-level fields of payload, noting where each entry
// lies and copying every other field to rest. It returns false on anything
// it does not follow (a truncated field, a group, a malformed varint),
// which Message.Unmarshal then reports.
func (d *decoder) split(payload []byte) bool {
	d.rest = d.rest[:0]
	d.spans = d.spans[:0]
	for i := 0; i < len(payload); {
		field, wire, tagLen, ok := nextField(payload, i)
		if !ok {
			return false
		}
		end := fieldEnd(payload, i, tagLen, wire)
		if end < 0 {
			return false
		}
		if field == entriesField && wire == 2 {
			_, n := binary.Uvarint(payload[i+tagLen:])
			d.spans = append(d.spans, [2]int{i + tagLen + n, end})
		} else {
			d.rest = append(d.rest, payload[i:end]...)
		}
		i = end
	}
	return true
}

// trim lets go of scratch grown by an unusually large message, so that it
// is not kept for the life of the stream.
func (d *decoder) trim() {
	if cap(d.rest) > maxKeptScratch {
		d.rest = nil
	}
	if cap(d.spans) > maxKeptScratch/16 {
		d.spans = nil
	}
}

// maxKeptScratch bounds the decoder's scratch kept between frames, in
// bytes.
const maxKeptScratch = 64 << 10

// nextField reads the tag at b[i:]: the field number (truncated to 32 bits,
// as the generated code does), the wire type and the tag's length.
func nextField(b []byte, i int) (field int32, wire uint64, n int, ok bool) {
	tag, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return 0, 0, 0, false
	}
	return int32(tag >> 3), tag & 7, n, true
}

// fieldEnd returns where the field whose tag (of length tagLen) starts at i
// ends, or -1 if it runs past b or its wire type is not one split follows.
func fieldEnd(b []byte, i, tagLen int, wire uint64) int {
	i += tagLen
	switch wire {
	case 0:
		_, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return -1
		}
		i += n
	case 1:
		i += 8
	case 2:
		l, n := binary.Uvarint(b[i:])
		if n <= 0 || l > uint64(len(b)-i-n) {
			return -1
		}
		i += n + int(l)
	case 5:
		i += 4
	default:
		return -1
	}
	if i > len(b) {
		return -1
	}
	return i
}

// hasField reports whether the encoded message b carries field number f
// (b decoded without error, so its fields are well formed).
func hasField(b []byte, f int32) bool {
	for i := 0; i < len(b); {
		field, wire, n, ok := nextField(b, i)
		if !ok {
			return false
		}
		if field == f {
			return true
		}
		if i = fieldEnd(b, i, n, wire); i < 0 {
			return false
		}
	}
	return false
}
