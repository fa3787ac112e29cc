package kvservice

import (
	"context"
	"time"
)

// awaitReadIndex asks for a read index (ask) and waits for it on ch,
// asking again every period until it comes, ctx ends or donec closes.
// Raft drops a read request silently when no leader can confirm it (a
// leader change, a lost message, a follower that knows no leader yet), so
// a single request could leave the read waiting for its whole timeout;
// asking again with the same context is safe: a leader still holding the
// first request counts the second as the same read, and the waiter takes
// the first answer only. It returns the index, 0 if ctx ended first (or a
// leader change failed the read), and ErrStopped if donec closed.
func awaitReadIndex(ctx context.Context, ask func() error, ch <-chan uint64, period time.Duration, donec <-chan struct{}) (uint64, error) {
	if err := ask(); err != nil {
		return 0, nil
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case index := <-ch:
			return index, nil
		case <-t.C:
			if err := ask(); err != nil {
				return 0, nil
			}
		case <-ctx.Done():
			return 0, nil
		case <-donec:
			return 0, ErrStopped
		}
	}
}

// readRetryPeriod is how long a linearizable read waits for its read
// index before asking again: half an election timeout, by when a healthy
// leader has answered (a heartbeat round) and a failed one is being
// replaced.
func readRetryPeriod(cfg *Config) time.Duration {
	return max(time.Duration(cfg.ElectionTicks)*cfg.TickInterval/2, cfg.TickInterval)
}
