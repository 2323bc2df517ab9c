// Package mysqldb opens a service's MySQL database with gorm, applies the service's schema, and
// runs units of work in transactions whose commit errors are reported as what they are: ambiguous.
package mysqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// DefaultMaxOpenConns is the size of the connection pool unless Options say otherwise. A request
// that holds one connection at a time can be served without waiting for one as long as at most
// this many run at once, which is what the services' MAX_IN_FLIGHT defaults are derived from.
const DefaultMaxOpenConns = 32

// Options bound the connection pool and the first connect.
type Options struct {
	MaxOpenConns int           // default DefaultMaxOpenConns
	ConnectWait  time.Duration // how long to retry the first connect; default 60s
}

// Open connects, retrying for a bounded time (opts.ConnectWait: MySQL may come up after the
// service), then applies schema. The DSN is normalised: times are parsed, in UTC.
func Open(ctx context.Context, dsn string, schema string, opts Options, log *slog.Logger) (*gorm.DB, error) {
	if opts.MaxOpenConns == 0 {
		opts.MaxOpenConns = DefaultMaxOpenConns
	}
	if opts.ConnectWait == 0 {
		opts.ConnectWait = 60 * time.Second
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse MYSQL_DSN: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	// Send each statement and its arguments in one round trip. Otherwise the driver prepares
	// every statement that has arguments on the server, executes it, then closes it: three
	// round trips, and the server parsing statements that run once. (Safe with utf8mb4; the
	// driver escapes the arguments itself, and refuses to for the few charsets where that is
	// unsafe.)
	cfg.InterpolateParams = true
	// The driver prints connection trouble ("[mysql] ... unexpected EOF") to stderr by default.
	cfg.Logger = driverLog{log.With("component", "mysql-driver")}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}

	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("MYSQL_DSN: %w", err)
	}
	sqlDB := sql.OpenDB(connector)
	sqlDB.SetMaxOpenConns(opts.MaxOpenConns)
	sqlDB.SetMaxIdleConns(opts.MaxOpenConns)
	sqlDB.SetConnMaxLifetime(5 * time.Minute)

	// Wait for the server before gorm sees the pool: gorm.Open asks the server for its version at
	// once (the dialect depends on it), and would fail on the first refused connection.
	if err := pingUntil(ctx, sqlDB, opts.ConnectWait, log); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to mysql %s/%s: %w", cfg.Addr, cfg.DBName, err)
	}
	db, err := gorm.Open(gormmysql.New(gormmysql.Config{Conn: sqlDB, DSNConfig: cfg}), &gorm.Config{
		Logger:                 logger.Discard, // errors are returned and logged once, at the edge
		SkipDefaultTransaction: true,           // every write we make is already in an explicit transaction
		DisableAutomaticPing:   true,           // pinged above
	})
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	if err := ApplySchema(ctx, db, schema); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return db, nil
}

func pingUntil(ctx context.Context, db *sql.DB, wait time.Duration, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var last error
	for attempt := 1; ; attempt++ {
		err := db.PingContext(ctx)
		if err == nil {
			return nil
		}
		// Report why the server could not be reached, not that the wait ran out during an attempt.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		log.Warn("mysql not reachable yet, retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return last
		case <-time.After(time.Second):
		}
	}
}

// ApplySchema runs each statement of an idempotent schema file (CREATE TABLE IF NOT EXISTS ...),
// statements separated by a semicolon at the end of a line.
func ApplySchema(ctx context.Context, db *gorm.DB, schema string) error {
	for _, stmt := range strings.Split(schema, ";\n") {
		if strings.TrimSpace(stripComments(stmt)) == "" {
			continue
		}
		if err := db.WithContext(ctx).Exec(stmt).Error; err != nil {
			return fmt.Errorf("apply schema: %w\n%s", err, stmt)
		}
	}
	return nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// ErrCommitUnknown wraps an error returned by COMMIT itself. The transaction may or may not have
// been committed (the connection can drop after the server committed but before it answered), so
// a caller must not report it as a failure: it must find out later, from the database.
var ErrCommitUnknown = errors.New("commit outcome unknown")

// InTx runs fn in one transaction. An error from fn rolls back and is returned as is (the
// transaction definitely did not commit). An error from COMMIT is wrapped in ErrCommitUnknown.
func InTx(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	tx := db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return fmt.Errorf("begin: %w", tx.Error)
	}
	if err := fn(tx); err != nil {
		// A failed rollback leaves nothing committed either: the server rolls back an open
		// transaction when its connection closes.
		tx.Rollback()
		return err
	}
	if err := tx.Commit().Error; err != nil {
		return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
	}
	return nil
}

// IsDuplicateKey reports whether err is MySQL's ER_DUP_ENTRY (1062) on the named key
// ("PRIMARY", or a unique index name); key "" matches any key.
func IsDuplicateKey(err error, key string) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1062 {
		return false
	}
	// MySQL: "Duplicate entry 'x' for key 'tbl.PRIMARY'"; MariaDB: "... for key 'PRIMARY'".
	return key == "" || strings.HasSuffix(me.Message, "'"+key+"'") || strings.HasSuffix(me.Message, "."+key+"'")
}

// Truncate makes s fit a utf8mb4 VARCHAR(n) column: it replaces invalid UTF-8, which such a
// column refuses, and cuts to at most n characters, never inside one.
func Truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// driverLog sends the MySQL driver's messages to the service's log as warnings.
type driverLog struct{ log *slog.Logger }

func (d driverLog) Print(v ...any) { d.log.Warn(strings.TrimSpace(fmt.Sprint(v...))) }
