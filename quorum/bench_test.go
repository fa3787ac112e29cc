package quorum

import (
	"fmt"
	"testing"
)

// Run with: go test ./quorum -run '^$' -bench . -benchmem
func BenchmarkMajorityCommittedIndex(b *testing.B) {
	for _, n := range []int{1, 3, 5, 7, 9, 17, 33} {
		b.Run(fmt.Sprintf("voters=%d", n), func(b *testing.B) {
			c, acked := syntheticCluster(n)
			b.ReportAllocs()
			for b.Loop() {
				_ = c.CommittedIndex(acked)
			}
		})
	}
}

func BenchmarkJointCommittedIndex(b *testing.B) {
	for _, n := range []int{3, 5, 7} {
		b.Run(fmt.Sprintf("voters=%d", n), func(b *testing.B) {
			c, acked := syntheticCluster(n + 1)
			// Joint consensus replacing voter 1 by voter n+1.
			in, out := MajorityConfig{}, MajorityConfig{}
			for id := range c {
				if id != uint64(n)+1 {
					out[id] = struct{}{}
				}
				if id != 1 {
					in[id] = struct{}{}
				}
			}
			j := JointConfig{in, out}
			b.ReportAllocs()
			for b.Loop() {
				_ = j.CommittedIndex(acked)
			}
		})
	}
}

func BenchmarkMajorityVoteResult(b *testing.B) {
	for _, n := range []int{3, 5, 7} {
		b.Run(fmt.Sprintf("voters=%d", n), func(b *testing.B) {
			c, _ := syntheticCluster(n)
			votes := map[uint64]bool{}
			for id := range c {
				votes[id] = id%2 == 0
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = c.VoteResult(votes)
			}
		})
	}
}
