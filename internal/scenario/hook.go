package scenario

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/raftkit/raft"
)

// SetRandomizedElectionTimeout sets rn's randomized election timeout, for
// scenario runners outside the raft package (the compat module), which
// cannot reach the test-only hook the raft package's own tests use.
//
// The field is unexported, so this reaches it by reflection: RawNode.raft
// (a *raft) and raft.randomizedElectionTimeout (an int). It panics, naming
// the field, if that layout ever changes; the tests of this package run it
// so such a change is caught at once.
func SetRandomizedElectionTimeout(rn *raft.RawNode, timeout int) {
	r := reflect.ValueOf(rn).Elem().FieldByName("raft")
	if !r.IsValid() || r.Kind() != reflect.Pointer || r.IsNil() {
		panic(fmt.Sprintf("scenario: RawNode has no non-nil pointer field raft (got %v)", r.Kind()))
	}
	f := r.Elem().FieldByName("randomizedElectionTimeout")
	if !f.IsValid() || f.Kind() != reflect.Int {
		panic(fmt.Sprintf("scenario: raft has no int field randomizedElectionTimeout (got %v)", f.Kind()))
	}
	*(*int)(unsafe.Pointer(f.UnsafeAddr())) = timeout
}
