package main

import "testing"

// TestRunPortStaysInItsRange: runs cycle through portSlots triples from the
// base, so two drivers whose bases are 400 apart never share a port.
func TestRunPortStaysInItsRange(t *testing.T) {
	used := map[int]bool{}
	for seq := 0; seq < 3*portSlots; seq++ {
		p := runPort(31000, seq)
		if p < 31000 || p+2 >= 31000+portSlots*10 {
			t.Fatalf("run %d: port %d outside [31000, %d)", seq, p, 31000+portSlots*10)
		}
		used[p] = true
	}
	if len(used) != portSlots {
		t.Fatalf("%d distinct first ports, want %d", len(used), portSlots)
	}
	if runPort(24000, 1) == runPort(24000, 2) {
		t.Fatal("consecutive runs share ports")
	}
}
