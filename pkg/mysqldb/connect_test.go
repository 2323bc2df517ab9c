package mysqldb_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rmqtx/pkg/mysqldb"
)

// retryLog is a slog handler that reports each "not reachable yet" warning on a channel.
type retryLog struct {
	retries chan string
}

func (h retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (h retryLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "not reachable yet") {
		var err string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				err = a.Value.String()
			}
			return true
		})
		select {
		case h.retries <- err:
		default:
		}
	}
	return nil
}
func (h retryLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h retryLog) WithGroup(string) slog.Handler      { return h }

// freePort returns a loopback port that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// mariadbBinary finds a MariaDB program the way scripts/infra-up.sh does.
func mariadbBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); fileExists(p) {
		return p
	}
	t.Fatalf("%s not found: this test starts a MariaDB server of its own; install MariaDB with scripts/infra-up.sh (scripts/test.sh does it for you)", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// A service may start before its database: in compose, or after a host reboot. Open must keep
// trying until the server answers, not fail on the first refused connection. The server here is
// a real MariaDB of the test's own, started only once Open has been refused at least once.
func TestOpenWaitsForAServerThatStartsLater(t *testing.T) {
	installDB := mariadbBinary(t, "mariadb-install-db")
	mariadbd := mariadbBinary(t, "mariadbd")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(installDB, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=socket").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePort(t)

	retries := make(chan string, 1)
	log := slog.New(retryLog{retries: retries})
	// No grant tables: any user may log in, which spares the test creating one. Database "test" is
	// created by mariadb-install-db.
	dsn := "root@tcp(127.0.0.1:" + strconv.Itoa(port) + ")/test"
	type result struct{ err error }
	opened := make(chan result, 1)
	var db interface{ Close() error }
	var mu sync.Mutex
	go func() {
		gdb, err := mysqldb.Open(context.Background(), dsn, "CREATE TABLE IF NOT EXISTS probe (id INT PRIMARY KEY);\n",
			mysqldb.Options{ConnectWait: 5 * time.Minute}, log)
		if err == nil {
			sqlDB, _ := gdb.DB()
			mu.Lock()
			db = sqlDB
			mu.Unlock()
		}
		opened <- result{err}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if db != nil {
			db.Close()
		}
	})

	// Open has tried and been refused: nothing listens on the port yet.
	select {
	case err := <-retries:
		t.Logf("refused as expected before the server started: %s", err)
	case r := <-opened:
		t.Fatalf("Open returned before any server was started: %v", r.err)
	}

	args := []string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "s.sock"),
		"--pid-file=" + filepath.Join(dir, "server.pid"), "--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port), "--skip-grant-tables", "--skip-name-resolve",
		"--innodb-buffer-pool-size=16M", "--log-error=" + filepath.Join(dir, "error.log")}
	if os.Getuid() == 0 {
		args = append(args, "--user=root")
	}
	server := exec.Command(mariadbd, args...)
	if err := server.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	t.Cleanup(func() {
		server.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			server.Process.Kill()
			<-exited
		}
	})

	select {
	case r := <-opened:
		if r.err != nil {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("Open failed although the server came up: %v\n%s", r.err, errLog)
		}
	case err := <-exited:
		errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("mariadbd exited: %v\n%s", err, errLog)
	}
}

// The wait is bounded: with no server at all, Open gives up after ConnectWait with the cause.
func TestOpenGivesUpAfterConnectWait(t *testing.T) {
	t.Parallel()
	dsn := "nobody@tcp(127.0.0.1:" + strconv.Itoa(freePort(t)) + ")/none"
	_, err := mysqldb.Open(context.Background(), dsn, "", mysqldb.Options{ConnectWait: 2 * time.Second},
		slog.New(retryLog{retries: make(chan string, 1)}))
	if err == nil {
		t.Fatal("Open succeeded with no server listening")
	}
	if !strings.Contains(err.Error(), "connect to mysql 127.0.0.1:") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v; want the address and the refusal", err)
	}
}
