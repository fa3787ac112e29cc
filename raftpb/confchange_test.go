package raftpb

import (
	"math/rand"
	"testing"
	"testing/quick"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfChangesFromStringParses(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []ConfChangeSingle
	}{
		{"", nil},
		{"   ", nil},
		{"v1", []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 1}}},
		{" l22 r3 u18446744073709551615 ", []ConfChangeSingle{
			{Type: ConfChangeAddLearnerNode, NodeID: 22},
			{Type: ConfChangeRemoveNode, NodeID: 3},
			{Type: ConfChangeUpdateNode, NodeID: 18446744073709551615},
		}},
		{"v0", []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 0}}},
	} {
		got, err := ConfChangesFromString(tc.in)
		require.NoError(t, err, "input %q", tc.in)
		assert.Equal(t, tc.want, got, "input %q", tc.in)
	}
}

func TestConfChangesFromStringRejects(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"v", "unknown token v"},
		{"v1  v2", "unknown token "}, // two spaces make an empty token
		{"x5", "unknown input: x5"},
		{"v1 q7", "unknown input: q7"},
		{"vx", `strconv.ParseUint: parsing "x": invalid syntax`},
		{"r-1", `strconv.ParseUint: parsing "-1": invalid syntax`},
		{"v18446744073709551616", `strconv.ParseUint: parsing "18446744073709551616": value out of range`},
	} {
		ccs, err := ConfChangesFromString(tc.in)
		assert.EqualError(t, err, tc.err, "input %q", tc.in)
		assert.Nil(t, ccs)
	}
}

func TestConfChangesToStringRoundTrips(t *testing.T) {
	types := []ConfChangeType{ConfChangeAddNode, ConfChangeRemoveNode, ConfChangeUpdateNode, ConfChangeAddLearnerNode}
	cfg := &quick.Config{Rand: rand.New(rand.NewSource(1)), MaxCount: 500}
	roundTrip := func(typeIdx []uint8, ids []uint64) bool {
		var ccs []ConfChangeSingle
		for i := range min(len(typeIdx), len(ids)) {
			ccs = append(ccs, ConfChangeSingle{Type: types[int(typeIdx[i])%len(types)], NodeID: ids[i]})
		}
		back, err := ConfChangesFromString(ConfChangesToString(ccs))
		return err == nil && assert.ObjectsAreEqual(ccs, back)
	}
	require.NoError(t, quick.Check(roundTrip, cfg))
}

func TestConfChangesToStringUnknownType(t *testing.T) {
	s := ConfChangesToString([]ConfChangeSingle{{Type: 9, NodeID: 4}, {Type: ConfChangeAddNode, NodeID: 5}})
	assert.Equal(t, "unknown4 v5", s)
}

func TestConfChangeV1AsV2(t *testing.T) {
	v1 := ConfChange{ID: 7, Type: ConfChangeAddLearnerNode, NodeID: 3, Context: []byte("ctx")}
	v2 := v1.AsV2()
	assert.Equal(t, ConfChangeV2{
		Changes: []ConfChangeSingle{{Type: ConfChangeAddLearnerNode, NodeID: 3}},
		Context: []byte("ctx"),
	}, v2)
	back, ok := v1.AsV1()
	assert.True(t, ok)
	assert.Equal(t, v1, back)

	_, ok = v2.AsV1()
	assert.False(t, ok, "a V2 change never converts to V1")
	assert.Equal(t, v2, v2.AsV2())
}

func TestConfChangeV2EnterJoint(t *testing.T) {
	one := []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 2}}
	two := append(append([]ConfChangeSingle(nil), one...), ConfChangeSingle{Type: ConfChangeRemoveNode, NodeID: 1})
	for _, tc := range []struct {
		name          string
		cc            ConfChangeV2
		autoLeave, ok bool
	}{
		{"empty auto", ConfChangeV2{}, false, false},
		{"single auto", ConfChangeV2{Changes: one}, false, false},
		{"double auto", ConfChangeV2{Changes: two}, true, true},
		{"single implicit", ConfChangeV2{Transition: ConfChangeTransitionJointImplicit, Changes: one}, true, true},
		{"empty implicit", ConfChangeV2{Transition: ConfChangeTransitionJointImplicit}, true, true},
		{"single explicit", ConfChangeV2{Transition: ConfChangeTransitionJointExplicit, Changes: one}, false, true},
		{"double explicit", ConfChangeV2{Transition: ConfChangeTransitionJointExplicit, Changes: two}, false, true},
		{"unknown transition", ConfChangeV2{Transition: 42, Changes: one}, false, true},
	} {
		autoLeave, ok := tc.cc.EnterJoint()
		assert.Equal(t, tc.autoLeave, autoLeave, tc.name)
		assert.Equal(t, tc.ok, ok, tc.name)
	}
}

func TestConfChangeV2LeaveJoint(t *testing.T) {
	assert.True(t, ConfChangeV2{}.LeaveJoint())
	assert.True(t, ConfChangeV2{Context: []byte("why")}.LeaveJoint(), "the context does not matter")
	assert.True(t, ConfChangeV2{Changes: []ConfChangeSingle{}}.LeaveJoint(), "empty equals nil")
	assert.False(t, ConfChangeV2{Transition: ConfChangeTransitionJointExplicit}.LeaveJoint())
	assert.False(t, ConfChangeV2{Changes: []ConfChangeSingle{{}}}.LeaveJoint())
}

func TestMarshalConfChange(t *testing.T) {
	typ, data, err := MarshalConfChange(nil)
	require.NoError(t, err)
	assert.Equal(t, EntryConfChangeV2, typ)
	assert.Nil(t, data)
	var empty ConfChangeV2
	require.NoError(t, empty.Unmarshal(data))
	assert.True(t, empty.LeaveJoint())

	v1 := ConfChange{ID: 1, Type: ConfChangeRemoveNode, NodeID: 9, Context: []byte("x")}
	typ, data, err = MarshalConfChange(v1)
	require.NoError(t, err)
	assert.Equal(t, EntryConfChange, typ)
	var gotV1 ConfChange
	require.NoError(t, gotV1.Unmarshal(data))
	assert.Equal(t, v1, gotV1)

	v2 := ConfChangeV2{Transition: ConfChangeTransitionJointExplicit, Changes: []ConfChangeSingle{{NodeID: 4}}, Context: []byte("y")}
	typ, data, err = MarshalConfChange(v2)
	require.NoError(t, err)
	assert.Equal(t, EntryConfChangeV2, typ)
	var gotV2 ConfChangeV2
	require.NoError(t, gotV2.Unmarshal(data))
	assert.Equal(t, v2, gotV2)
}
