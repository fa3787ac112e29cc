package walstore

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/wal/shared"
)

// SaveBatch converts a round's updates into the WAL's form in a slice it
// reuses: saving a round of many groups costs far less than the slice.
func TestSaveBatchReusesConversion(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool keeps little under the race detector")
	}
	w, err := shared.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const groups = 500
	updates := make([]multiraft.GroupUpdate, groups)
	for i := range updates {
		id := uint64(i + 1)
		if _, err := w.CreateGroup(id); err != nil {
			t.Fatal(err)
		}
		// Nothing to write: the WAL plans no record, so what is
		// allocated is SaveBatch's own.
		updates[i] = multiraft.GroupUpdate{Group: multiraft.GroupID(id)}
	}
	s := New(w)
	save := func() {
		if err := s.SaveBatch(updates); err != nil {
			t.Fatal(err)
		}
	}
	save()
	const runs = 40
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		save()
	}
	runtime.ReadMemStats(&after)
	perSave := (after.TotalAlloc - before.TotalAlloc) / runs
	slice := uint64(groups) * uint64(unsafe.Sizeof(shared.GroupUpdate{}))
	if perSave > slice/2 {
		t.Fatalf("a save of %d groups allocated %d bytes, want well below the %d of its converted updates", groups, perSave, slice)
	}
}
