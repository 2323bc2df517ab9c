package batch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
)

func TestWriterWritesEverythingInBatches(t *testing.T) {
	var (
		mu      sync.Mutex
		got     []int
		batches int
	)
	w := New(func(_ context.Context, b []int) error {
		mu.Lock()
		defer mu.Unlock()
		if len(b) > Size {
			t.Errorf("batch of %d > %d", len(b), Size)
		}
		got = append(got, b...)
		batches++
		return nil
	}, slog.New(slog.DiscardHandler), nil)
	const n = 1000
	for i := range n {
		w.Add(i)
	}
	w.Close()
	if len(got) != n {
		t.Fatalf("wrote %d records, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("record %d = %d: order not kept", i, v)
		}
	}
	if batches >= n {
		t.Fatalf("%d writes for %d records: not batched", batches, n)
	}
}

func TestWriterDropsWhenFullAndSurvivesWriteErrors(t *testing.T) {
	release := make(chan struct{})
	var dropped atomic.Int64
	w := New(func(context.Context, []int) error {
		<-release // the database is stuck
		return errors.New("stuck")
	}, slog.New(slog.DiscardHandler), func() { dropped.Add(1) })
	for i := range Queue + Size + 100 {
		w.Add(i) // must never block
	}
	close(release)
	w.Close()
	if dropped.Load() == 0 {
		t.Fatal("a full queue dropped nothing")
	}
}
