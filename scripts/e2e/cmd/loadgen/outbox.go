package main

// The outbox's size under load (PLACEMENT=outbox): how many events wait for the relay.

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// outboxWatch counts the rows of the outbox table every interval until stopped. The count is
// the events committed and not yet handed to the broker: the relay's backlog.
type outboxWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	peak    int
	sum     int
	samples int
	err     error
}

func watchOutbox(dsn string, interval time.Duration) (*outboxWatch, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("OUTBOX_DSN: %w", err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	w := &outboxWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer db.Close()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			var n int
			err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&n)
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			if err != nil {
				w.err = fmt.Errorf("count the outbox: %w", err)
			} else {
				w.peak, w.sum, w.samples = max(w.peak, n), w.sum+n, w.samples+1
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w, nil
}

// stop ends the sampling and returns the largest and the mean row count seen.
func (w *outboxWatch) stop() (peak int, mean float64, err error) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.samples > 0 {
		mean = float64(w.sum) / float64(w.samples)
	}
	return w.peak, mean, w.err
}
