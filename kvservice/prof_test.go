package kvservice

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestProfShardedLoad(t *testing.T) {
	c := newShardedCluster(t, 3, 1000, func(cfg *Config) { cfg.TickInterval = 100 * time.Millisecond; cfg.ElectionTicks = 10 })
	time.Sleep(3 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	deadline := time.Now().Add(8 * time.Second)
	for g := 0; g < 256; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				k := fmt.Sprintf("load/%d/%d", g, i)
				sh := ShardOf(k, 1000)
				s := c.srv[c.srv[1].reps[sh].leader()]
				if s == nil {
					s = c.srv[1]
				}
				if _, err := s.Put(context.Background(), k, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"); err == nil {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		}(g)
	}
	wg.Wait()
	t.Logf("%d writes, %.0f/s", n, float64(n)/8)
}
