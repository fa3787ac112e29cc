package wiretree

import (
	"math"
	"reflect"
	"testing"
)

type kind int32

type inner struct {
	N    uint64
	Data []byte
}

type outer struct {
	K       kind
	Flag    bool
	IDs     []uint64
	Blob    []byte
	Items   []inner
	Ptr     *inner
	Nothing *inner
}

// TestRoundTripKeepsNilAndEmpty pins the property the wire tests rely on:
// nil and empty stay apart, and extreme numbers survive.
func TestRoundTripKeepsNilAndEmpty(t *testing.T) {
	for _, in := range []outer{
		{},
		{K: -3, Flag: true, IDs: []uint64{}, Blob: []byte{}, Items: []inner{}},
		{K: math.MaxInt32, IDs: []uint64{0, math.MaxUint64}, Blob: []byte{0, 255},
			Items: []inner{{}, {N: 1 << 63, Data: []byte{}}}, Ptr: &inner{Data: []byte("x")}},
	} {
		data, err := Marshal(&in)
		if err != nil {
			t.Fatal(err)
		}
		var out outer
		if err := Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("round trip of %s\n gave %+v\nwant %+v", data, out, in)
		}
	}
}

// TestShapeMismatch checks that a tree does not silently fill a type of a
// different shape.
func TestShapeMismatch(t *testing.T) {
	data, err := Marshal(inner{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	var o outer
	if err := Unmarshal(data, &o); err == nil {
		t.Errorf("decoding %s into outer succeeded", data)
	}
}
