// Package frame is the record framing that package wal and package
// wal/shared both write: each record is
//
//	offset 0: uint32 little-endian payload length n
//	offset 4: uint8 record type (non-zero; the meaning is the caller's)
//	offset 5: uint32 little-endian CRC32C of bytes [0,5) followed by the payload
//	offset 9: n bytes of payload
//
// The checksum covers the length and the type as well as the payload, so a
// flipped bit in a length cannot make a reader skip to a wrong boundary and
// still see a good record there by chance.
package frame

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// HeaderSize is the size of a record's header.
const HeaderSize = 9

// Castagnoli is the CRC32C table the records (and the callers' other
// checksums) use.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Reasons a record does not decode. Callers decide whether that means a
// torn tail or corruption.
var (
	ErrShort       = errors.New("record extends past the end of the data")
	ErrZero        = errors.New("zeroed space instead of a record")
	ErrBadType     = errors.New("unknown record type")
	ErrBadChecksum = errors.New("checksum mismatch")
)

// Begin reserves a header at the end of dst and returns where the record
// starts; Finish fills the header in once the payload has been appended.
// Framing in place saves copying payloads twice.
func Begin(dst []byte) ([]byte, int) {
	return append(dst, make([]byte, HeaderSize)...), len(dst)
}

// Finish completes the record that Begin started at buf[start:], whose
// payload is the rest of buf.
func Finish(buf []byte, start int, typ uint8) { FinishSeeded(buf, start, typ, 0) }

// FinishSeeded is Finish with the checksum started from seed instead of
// zero (see DecodeSeeded).
func FinishSeeded(buf []byte, start int, typ uint8, seed uint32) {
	rec := buf[start:]
	binary.LittleEndian.PutUint32(rec[0:4], uint32(len(rec)-HeaderSize))
	rec[4] = typ
	binary.LittleEndian.PutUint32(rec[5:9], checksum(seed, rec[:5], rec[HeaderSize:]))
}

// Reseal recomputes the checksum of the complete record at the start of
// rec under seed and returns the record's framed size. The record must be
// well formed (written by this package).
func Reseal(rec []byte, seed uint32) int {
	size := HeaderSize + int(binary.LittleEndian.Uint32(rec[0:4]))
	binary.LittleEndian.PutUint32(rec[5:9], checksum(seed, rec[:5], rec[HeaderSize:size]))
	return size
}

// Append appends one record holding payload to dst. The caller bounds the
// payload's size.
func Append(dst []byte, typ uint8, payload []byte) []byte {
	dst, start := Begin(dst)
	dst = append(dst, payload...)
	Finish(dst, start, typ)
	return dst
}

// Decode decodes the record at the start of buf: its type (in [1, typeLimit)),
// its payload (aliasing buf) and its framed size. It never panics and never
// allocates, whatever buf holds.
func Decode(buf []byte, typeLimit uint8) (typ uint8, payload []byte, size int, err error) {
	return DecodeSeeded(buf, typeLimit, 0)
}

// DecodeSeeded is Decode for records whose checksum was started from seed
// (FinishSeeded). Two seeds that differ give, for every record, checksums
// that differ: the CRC register after the seed is a bijection of it, and
// the checksum of a fixed message is an invertible affine function of that
// register. So a record written under one seed never decodes under
// another, whatever it holds; only bytes that were never a record can,
// with the usual odds of 2^-32.
func DecodeSeeded(buf []byte, typeLimit uint8, seed uint32) (typ uint8, payload []byte, size int, err error) {
	if len(buf) < HeaderSize {
		if AllZero(buf) {
			return 0, nil, 0, ErrZero
		}
		return 0, nil, 0, ErrShort
	}
	n := binary.LittleEndian.Uint32(buf[0:4])
	typ = buf[4]
	want := binary.LittleEndian.Uint32(buf[5:9])
	switch {
	case n == 0 && typ == 0 && want == 0:
		return 0, nil, 0, ErrZero
	case typ == 0 || typ >= typeLimit:
		return 0, nil, 0, ErrBadType
	case uint64(n) > uint64(len(buf)-HeaderSize):
		return 0, nil, 0, ErrShort
	}
	size = HeaderSize + int(n)
	payload = buf[HeaderSize:size]
	if checksum(seed, buf[:5], payload) != want {
		return 0, nil, 0, ErrBadChecksum
	}
	return typ, payload, size, nil
}

// AllZero reports whether b holds only zero bytes (preallocated space).
func AllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func checksum(seed uint32, header, payload []byte) uint32 {
	return crc32.Update(crc32.Update(seed, Castagnoli, header), Castagnoli, payload)
}
