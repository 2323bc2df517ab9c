package main

// The end-to-end latency, order to cart change, read from cart-service's processed_orders.

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// endToEnd waits (up to settle) until every placed order is in processed_orders, then returns
// applied_at - order_created_at for each, and how many never arrived.
func endToEnd(ctx context.Context, dsn string, orderIDs []string, settle time.Duration) ([]time.Duration, int, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, 0, fmt.Errorf("CARTS_DSN: %w", err)
	}
	defer db.Close()
	found := map[string]time.Duration{}
	pending := slices.Clone(orderIDs)
	deadline := time.Now().Add(settle)
	for {
		var still []string
		for chunk := range slices.Chunk(pending, 500) {
			got, err := appliedLatencies(ctx, db, chunk)
			if err != nil {
				return nil, 0, err
			}
			for _, id := range chunk {
				if d, ok := got[id]; ok {
					found[id] = d
				} else {
					still = append(still, id)
				}
			}
		}
		pending = still
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	out := make([]time.Duration, 0, len(found))
	for _, d := range found {
		out = append(out, d)
	}
	return out, len(pending), nil
}

func appliedLatencies(ctx context.Context, db *sql.DB, ids []string) (map[string]time.Duration, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := "SELECT order_id, TIMESTAMPDIFF(MICROSECOND, order_created_at, applied_at) FROM processed_orders " +
		"WHERE order_created_at IS NOT NULL AND order_id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read processed_orders: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var id string
		var micros int64
		if err := rows.Scan(&id, &micros); err != nil {
			return nil, fmt.Errorf("read processed_orders: %w", err)
		}
		out[id] = time.Duration(micros) * time.Microsecond
	}
	return out, rows.Err()
}
