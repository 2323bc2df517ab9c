// Package batch writes records in the background, in batches, for work that must never slow
// down the path that produces it (the services' order timelines). Add never blocks: a full queue
// drops the record and counts it. Records still queued when the process dies are lost; Close
// writes what is queued.
package batch

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Sizes: at most Size records per write, a write at least every Every while records wait.
const (
	Queue = 8192
	Size  = 256
	Every = 50 * time.Millisecond
)

// Writer queues records of type T and hands them to write in batches, from one goroutine.
type Writer[T any] struct {
	write   func(ctx context.Context, batch []T) error
	log     *slog.Logger
	dropped func()
	queue   chan T
	done    chan struct{}
	stop    sync.Once
}

// New starts the background writer. dropped, if not nil, counts records dropped on a full queue.
// A failed write is logged and its records are dropped: nothing depends on them.
func New[T any](write func(ctx context.Context, batch []T) error, log *slog.Logger, dropped func()) *Writer[T] {
	w := &Writer[T]{write: write, log: log, dropped: dropped, queue: make(chan T, Queue), done: make(chan struct{})}
	go w.run()
	return w
}

// Add queues v. It never blocks, and must not be called after Close.
func (w *Writer[T]) Add(v T) {
	select {
	case w.queue <- v:
	default:
		if w.dropped != nil {
			w.dropped()
		}
	}
}

// Close writes what is queued and stops the writer.
func (w *Writer[T]) Close() {
	w.stop.Do(func() { close(w.queue) })
	<-w.done
}

func (w *Writer[T]) run() {
	defer close(w.done)
	batch := make([]T, 0, Size)
	tick := time.NewTicker(Every)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := w.write(ctx, batch); err != nil {
			w.log.Warn("background batch not written", "records", len(batch), "err", err)
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case v, ok := <-w.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, v)
			if len(batch) == Size {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}
