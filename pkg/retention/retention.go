// Package retention deletes old rows of the tables that only describe what happened (the order
// timelines, the cart's deliveries and rejected messages), which would otherwise grow for ever.
// Nothing that decides an outcome is purged: tx_log, orders and processed_orders stay.
//
// Rows go in small batches, DELETE ... WHERE <column> < ? ORDER BY <column> LIMIT n, each its own
// short transaction on an index of <column>: a purge never holds many row locks at once, nor for
// long, so the flow that writes these tables is not held up. One big DELETE would lock every old
// row (and the gaps between them) until it finished.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// Batch is how many rows one DELETE removes at most.
const Batch = 500

// Table is one table to purge: rows whose Column (a DATETIME) is older than the retention go.
// Index names the index on Column, created if missing (databases made before it existed).
type Table struct {
	Name, Column, Index string
}

// Purger purges Tables of rows older than Retention.
type Purger struct {
	db        *gorm.DB
	tables    []Table
	retention time.Duration
	batch     int
	now       func() time.Time
	log       *slog.Logger

	onBatch func(table string, deleted int64) // tests: sees each DELETE's row count
}

// New returns a purger and makes sure each table has its index. batch is the most rows one
// DELETE removes (Batch in the services).
func New(ctx context.Context, db *gorm.DB, log *slog.Logger, retention time.Duration, batch int, now func() time.Time, tables ...Table) (*Purger, error) {
	if retention <= 0 || batch <= 0 {
		return nil, fmt.Errorf("retention: retention %v and batch %d must be positive", retention, batch)
	}
	for _, t := range tables {
		if err := ensureIndex(ctx, db, t); err != nil {
			return nil, err
		}
	}
	return &Purger{db: db, tables: tables, retention: retention, batch: batch, now: now, log: log}, nil
}

// ensureIndex adds t's index when the table lacks it. schema.sql creates it with new tables; a
// table created before it was there gets it here. ALTER TABLE ... ADD INDEX builds the index
// online in InnoDB (writes go on meanwhile). Two instances starting together may both try: the
// loser's "duplicate key name" is success.
func ensureIndex(ctx context.Context, db *gorm.DB, t Table) error {
	var n int64
	err := db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM information_schema.statistics
		WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?`, t.Name, t.Index).Scan(&n).Error
	if err != nil {
		return fmt.Errorf("look for index %s on %s: %w", t.Index, t.Name, err)
	}
	if n > 0 {
		return nil
	}
	err = db.WithContext(ctx).Exec(fmt.Sprintf("ALTER TABLE %s ADD INDEX %s (%s)", t.Name, t.Index, t.Column)).Error
	var me *mysqldriver.MySQLError
	if errors.As(err, &me) && me.Number == 1061 { // ER_DUP_KEYNAME
		return nil
	}
	if err != nil {
		return fmt.Errorf("add index %s on %s: %w", t.Index, t.Name, err)
	}
	return nil
}

// Once deletes every row older than the retention, batch by batch, and returns how many rows it
// deleted per table. It stops at the first error, or when ctx ends.
func (p *Purger) Once(ctx context.Context) (map[string]int64, error) {
	cutoff := p.now().Add(-p.retention)
	deleted := map[string]int64{}
	for _, t := range p.tables {
		// Table and column names are the services' constants, never input.
		stmt := fmt.Sprintf("DELETE FROM %s WHERE %s < ? ORDER BY %s LIMIT ?", t.Name, t.Column, t.Column)
		for {
			res := p.db.WithContext(ctx).Exec(stmt, cutoff, p.batch)
			if res.Error != nil {
				return deleted, fmt.Errorf("purge %s: %w", t.Name, res.Error)
			}
			deleted[t.Name] += res.RowsAffected
			if p.onBatch != nil {
				p.onBatch(t.Name, res.RowsAffected)
			}
			if res.RowsAffected < int64(p.batch) {
				break
			}
		}
	}
	return deleted, nil
}

// Every is how often Run purges: a tenth of the retention, at most an hour, at least a second.
// Rows are thus kept at most about 10% longer than the retention.
func (p *Purger) Every() time.Duration {
	return min(time.Hour, max(time.Second, p.retention/10))
}

// Run purges once at once, then every Every(), until ctx ends. A failed purge is logged and
// tried again next time: nothing depends on these rows being gone.
func (p *Purger) Run(ctx context.Context) {
	tick := time.NewTicker(p.Every())
	defer tick.Stop()
	for {
		deleted, err := p.Once(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.log.WarnContext(ctx, "retention purge failed; trying again later", "err", err)
		default:
			for table, n := range deleted {
				if n > 0 {
					p.log.InfoContext(ctx, "retention purge", "table", table, "deleted", n, "retention", p.retention.String())
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Start runs the purger in the background until stop is called; stop returns once it has ended.
func (p *Purger) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
