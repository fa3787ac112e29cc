package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// frameHeaderLen is the size of the length prefix in front of every frame.
const frameHeaderLen = 4

// initialFrameBuf is the capacity readFrame gives a buffer it starts from
// nothing: room for the acknowledgements and heartbeats that make up most
// frames, so that a stream does not grow its buffer in small steps.
const initialFrameBuf = 256

// ErrFrameTooLarge is returned, wrapped with the sizes involved, when a frame
// announces (or a message would need) more bytes than Config.MaxMessageSize
// allows. The receiver drops the connection: after a refused length prefix
// the stream can no longer be resynchronized.
var ErrFrameTooLarge = errors.New("transport: frame exceeds the maximum message size")

// appendFrame appends one frame carrying payload to dst: a 4-byte big-endian
// length followed by the payload itself.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// readFrame reads one frame from r into buf (grown as needed) and returns the
// payload, which aliases buf and is valid until the next call with the same
// buffer.
//
// A length above max is refused before anything is allocated, so a hostile or
// broken peer cannot make the receiver reserve memory it announces. A stream
// that ends between frames returns io.EOF; one that ends inside a frame
// returns io.ErrUnexpectedEOF.
func readFrame(r io.Reader, max uint32, buf []byte) ([]byte, error) {
	// The length prefix is read into buf's own storage: a local array
	// passed to r, an interface, would escape to the heap, one allocation
	// for every frame a stream receives.
	if cap(buf) < frameHeaderLen {
		buf = make([]byte, frameHeaderLen, initialFrameBuf)
	}
	hdr := buf[:frameHeaderLen]
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n > max {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}
