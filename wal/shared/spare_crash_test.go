package shared

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// crashImage is a copy of a WAL directory taken at one step of spare
// preparation or rotation: what a crash there leaves, given that what was
// written reached the disk (steps before a sync are also covered by the
// image of the step before).
type crashImage struct {
	step string
	dir  string
	// state is the index of the last completed write; inWrite says the
	// image was taken inside the next one, which recovery may then keep.
	state   int
	inWrite bool
}

// copyDirTo copies the files of a WAL directory (not its lock) into out.
func copyDirTo(dir, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == dir || filepath.Base(path) == lockFile {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(out, rel), 0o755)
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.Create(filepath.Join(out, rel))
		if err != nil {
			return err
		}
		defer dst.Close()
		_, err = io.Copy(dst, src)
		return err
	})
}

// TestSpareCrashImages runs a workload through rotations into spares (new
// and recycled ones) and copies the directory at every step of the new
// rotation: the spare created, half or wholly zeroed (a recycled one still
// holding its old segment's records), the header written into it, synced,
// renamed. Every image recovers exactly: the groups as after the last
// completed write or, for images taken inside a write, as after that one,
// and no spare is left behind. Variants of the images with a recycled
// spare's old records only partly zeroed recover the same.
func TestSpareCrashImages(t *testing.T) {
	dir, images := t.TempDir(), t.TempDir()
	w := openTest(t, dir, &spareOptions)
	var (
		mu     sync.Mutex // held by the writer during a write, by the spare goroutine for an image
		wants  []walSummary
		shots  []crashImage
		errs   []error
		signal = make(chan struct{}, 1)
	)
	take := func(step string, inWrite bool) {
		out := filepath.Join(images, fmt.Sprintf("%03d-%s", len(shots), step))
		if err := copyDirTo(dir, out); err != nil {
			errs = append(errs, err)
		}
		shots = append(shots, crashImage{step: step, dir: out, state: len(wants) - 1, inWrite: inWrite})
	}
	w.spare.hook = func(step string) {
		switch step {
		case "spare-start", "spare-zeroing", "spare-ready":
			mu.Lock()
			take(step, false)
			mu.Unlock()
		case "header-written", "header-synced", "renamed":
			take(step, true) // on the writer, which holds mu
		case "spare-done":
			select {
			case signal <- struct{}{}:
			default:
			}
		}
	}
	write := func(f func() error) {
		mu.Lock()
		require.NoError(t, f())
		wants = append(wants, summarizeAll(t, w))
		mu.Unlock()
		settleSpare(t, w, signal)
	}
	write(func() error { return w.CreateGroups(1, 2, 3) })
	for k := 1; k <= 120; k++ {
		id := uint64(k%3 + 1)
		g := mustGroup(t, w, id)
		last, err := g.LastIndex()
		require.NoError(t, err)
		e := pb.Entry{Index: last + 1, Term: 1, Data: make([]byte, 1000+k)}
		write(func() error {
			return w.SaveBatch([]GroupUpdate{{GroupID: id, HardState: pb.HardState{Term: 1, Commit: last}, Entries: []pb.Entry{e}}})
		})
		if k%10 == 0 {
			write(func() error { return g.Compact(last) })
		}
	}
	st := w.Stats()
	require.GreaterOrEqual(t, st.SparesUsed, uint64(3), "%+v", st)
	require.Positive(t, st.SegmentsRecycled, "%+v", st)
	require.NoError(t, w.Close())
	require.Empty(t, errs)

	steps := map[string]int{}
	for _, img := range shots {
		steps[img.step]++
		if img.step == "spare-start" {
			checkHalfZeroed(t, img, wants)
		}
		checkImage(t, img, wants, "")
	}
	for _, s := range []string{"spare-start", "spare-zeroing", "spare-ready", "header-written", "header-synced", "renamed"} {
		require.Positive(t, steps[s], "no image at step %s: %v", s, steps)
	}
}

// checkHalfZeroed checks a copy of img whose spare file is only partly
// zeroed: zeros, then old records if it is a recycled segment.
func checkHalfZeroed(t *testing.T, img crashImage, wants []walSummary) {
	half := img
	half.dir += "-half"
	require.NoError(t, copyDirTo(img.dir, half.dir))
	spares := spareFiles(t, half.dir)
	require.Len(t, spares, 1)
	path := spares[0]
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	clear(data[:len(data)/2])
	require.NoError(t, os.WriteFile(path, data, 0o644))
	checkImage(t, half, wants, "half zeroed")
}

// checkImage opens a crash image and compares its groups with the state
// expected there.
func checkImage(t *testing.T, img crashImage, wants []walSummary, variant string) {
	t.Helper()
	r, err := Open(img.dir, &spareOptions)
	require.NoError(t, err, "image %s %s", img.dir, variant)
	got := summarizeAll(t, r)
	require.NoError(t, r.Close())
	ok := equalSummaries(got, wants[img.state]) || img.inWrite && img.state+1 < len(wants) && equalSummaries(got, wants[img.state+1])
	require.True(t, ok, "image %s %s: recovered state matches neither the last write nor the one in flight", img.dir, variant)
	require.Empty(t, spareFiles(t, img.dir), "image %s %s: the spare was not removed", img.dir, variant)
}
