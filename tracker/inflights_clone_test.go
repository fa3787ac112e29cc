package tracker

import "testing"

// TestInflightsCloneWrapped checks that a clone of a window whose live
// flights wrap around the ring end behaves exactly like the original, and
// that the two stay independent.
func TestInflightsCloneWrapped(t *testing.T) {
	in := NewInflights(8, 0)
	for i := uint64(1); i <= 8; i++ {
		in.Add(i, i)
	}
	in.FreeLE(5) // live: 6,7,8 at the ring's end
	in.Add(9, 9)
	in.Add(10, 10) // wraps to the front
	c := in.Clone()
	for _, w := range []*Inflights{in, c} {
		if w.Count() != 5 || w.bytes != 6+7+8+9+10 {
			t.Fatalf("count %d bytes %d, want 5 and 40", w.Count(), w.bytes)
		}
	}
	c.FreeLE(8)
	if in.Count() != 5 || c.Count() != 2 || c.bytes != 19 {
		t.Fatalf("after freeing the clone: original %d, clone %d (%d bytes)", in.Count(), c.Count(), c.bytes)
	}
	for i := uint64(11); i <= 16; i++ {
		c.Add(i, 1)
	}
	if !c.Full() || in.Full() {
		t.Fatalf("clone full %v, original full %v", c.Full(), in.Full())
	}
	c.FreeLE(16)
	if c.Count() != 0 || in.Count() != 5 {
		t.Fatalf("clone %d, original %d", c.Count(), in.Count())
	}
	if empty := NewInflights(4, 0).Clone(); empty.ring != nil || empty.Count() != 0 {
		t.Fatal("an empty window's clone should have no ring")
	}
}
