// Package testenv gives integration tests the real MariaDB and RocketMQ that scripts/infra-up.sh
// starts: a throwaway database per test, a fresh topic per test. A server that is not there fails
// the test with a message saying how to start it; it is never a skip.
package testenv

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"rmqtx/pkg/mq"
	"rmqtx/pkg/mysqldb"
)

const hint = "start the test servers with scripts/infra-up.sh (scripts/test.sh does it for you)"

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// AdminDSN is the DSN of a MariaDB user that may create databases, without a database name.
func AdminDSN() string { return getenv("TEST_MYSQL_DSN", "rmqtx:rmqtx@tcp(127.0.0.1:3306)/") }

// Namesrv is the RocketMQ name server address list.
func Namesrv() []string { return strings.Split(getenv("TEST_ROCKETMQ_NAMESRV", "127.0.0.1:9876"), ";") }

// Broker is the RocketMQ broker address (for creating topics).
func Broker() string { return getenv("TEST_ROCKETMQ_BROKER", "127.0.0.1:10911") }

// Unique returns prefix plus a short random suffix, safe as a database, topic or group name.
func Unique(prefix string) string {
	return prefix + "_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
}

// NewDatabase creates an empty database, drops it when the test ends, and returns its DSN.
func NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	admin, err := sql.Open("mysql", AdminDSN())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("testenv: MariaDB is not reachable at %s: %v; %s", AdminDSN(), err, hint)
	}
	name := Unique("t_" + prefix)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	cfg, err := mysql.ParseDSN(AdminDSN())
	if err != nil {
		t.Fatalf("testenv: TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = name
	return cfg.FormatDSN()
}

// OpenDB opens dsn the way the services do (mysqldb.Open, which applies schema), logs the
// database's warnings to the test, and closes it when the test ends.
func OpenDB(t testing.TB, dsn, schema string) *gorm.DB {
	t.Helper()
	db, err := mysqldb.Open(context.Background(), dsn, schema, mysqldb.Options{ConnectWait: 10 * time.Second}, Logger(t))
	if err != nil {
		t.Fatalf("testenv: open database: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

// Logger is the logger of code under test: its warnings and errors go to the test's output, shown
// when the test fails or runs with -v. (A test that wants silence uses slog.DiscardHandler.)
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// RequireBroker fails the test unless the name server and broker accept connections.
func RequireBroker(t testing.TB) {
	t.Helper()
	for _, addr := range append(Namesrv(), Broker()) {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("testenv: RocketMQ is not reachable at %s: %v; %s", addr, err, hint)
		}
		c.Close()
	}
}

// NewTopic creates a topic used by this test only, so tests never see each other's messages.
func NewTopic(t testing.TB, prefix string) string {
	t.Helper()
	RequireBroker(t)
	adm, err := mq.NewAdmin(Namesrv())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer adm.Close()
	topic := Unique(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adm.EnsureTopic(ctx, topic, Broker(), 4); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return topic
}

// FreeAddr returns a loopback address (host:port) that nothing listens on now, for a server the
// test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Eventually polls cond every 100 ms until it returns true or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
