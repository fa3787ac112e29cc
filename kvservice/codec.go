package kvservice

import (
	"encoding/binary"
	"encoding/json"
	"errors"
)

// A command travels in a log entry in one of two forms:
//
//   - JSON (the struct's tags), which a first byte '{' announces; the
//     single-group server writes it, and older sharded members did;
//   - binary, which a first byte codecBinary announces, written by the
//     sharded server: decoding it costs a fraction of JSON's, and a
//     sharded member decodes every entry of every shard it hosts. After
//     the version byte: node and request ID (uvarints), then op, key and
//     value (each a uvarint length and its bytes), then a flag byte (1:
//     an expected value follows, as length and bytes; 0: none).
//
// decodeCommand reads both, so a store or WAL written by either form is
// replayed by this version; a member of an older version cannot read the
// binary form, so every member of a sharded cluster must run a version
// with decodeCommand.
const codecBinary byte = 1

var errBadCommand = errors.New("kvservice: malformed binary command")

// encodeCommand returns c in the binary form.
func encodeCommand(c command) []byte {
	n := 1 + 2*binary.MaxVarintLen64 + 4*binary.MaxVarintLen64 + 1 + len(c.Op) + len(c.Key) + len(c.Value)
	if c.Expect != nil {
		n += len(*c.Expect)
	}
	b := make([]byte, 0, n)
	b = append(b, codecBinary)
	b = binary.AppendUvarint(b, c.Node)
	b = binary.AppendUvarint(b, c.Req)
	b = appendString(b, c.Op)
	b = appendString(b, c.Key)
	b = appendString(b, c.Value)
	if c.Expect == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	return appendString(b, *c.Expect)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeCommand reads a command in either form (see codecBinary). Bad
// input is an error, never a panic.
func decodeCommand(data []byte) (command, error) {
	var c command
	if len(data) == 0 || data[0] != codecBinary {
		err := json.Unmarshal(data, &c)
		return c, err
	}
	d := decoder{b: data[1:]}
	c.Node = d.uvarint()
	c.Req = d.uvarint()
	c.Op = d.string()
	c.Key = d.string()
	c.Value = d.string()
	switch d.byte() {
	case 0:
	case 1:
		e := d.string()
		c.Expect = &e
	default:
		d.err = errBadCommand
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errBadCommand // trailing bytes
	}
	return c, d.err
}

// decoder reads the binary form; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadCommand
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errBadCommand
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errBadCommand
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}
