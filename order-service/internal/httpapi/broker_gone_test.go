package httpapi

// POST /orders through the real RocketMQ producer, against a NameServer and Broker of this test's
// own that the test then kills: the answer is 503 and nothing is written.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmqproducer "github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/order-service/internal/order"
	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/httpx"
	"rmqtx/pkg/mq"
	"rmqtx/pkg/testenv"
)

// freePorts finds a port for the NameServer and one for the Broker, which also listens on its
// port - 2 and port + 1, all free now. They come from 24000-28999: below the kernel's ephemeral
// range (32768-60999 by default on Linux), where any outgoing connection may take a port while the
// broker's JVM is starting (its HA port, port + 1, is then "Address already in use"), and clear of
// the fixed ports the other tests' servers use (a host whose ephemeral range starts lower would
// need another range). Each port is checked on the wildcard address too, which is stricter
// than the loopback address the broker binds (scripts/rocketmq/LoopbackHAService.java).
// (infra-up.sh would re-use a server it finds listening; this test then fails on the missing pid
// file rather than kill a process it did not start.)
func freePorts(t *testing.T) (namesrv, broker int) {
	t.Helper()
	free := func(ports ...int) bool {
		for _, port := range ports {
			for _, host := range []string{"127.0.0.1", "0.0.0.0"} {
				ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
				if err != nil {
					return false
				}
				ln.Close()
			}
		}
		return true
	}
	const low, high = 24000, 29000
	for range 200 {
		ns, br := low+rand.IntN(high-low), low+2+rand.IntN(high-low-3)
		if ns < br-2 || ns > br+1 {
			if free(ns, br-2, br, br+1) {
				return ns, br
			}
		}
	}
	t.Fatalf("no free ports in %d-%d for a NameServer and a broker (port - 2, port, port + 1)", low, high)
	return 0, 0
}

// ownBroker starts a NameServer and a Broker for this test alone with scripts/infra-up.sh (it
// re-uses the MariaDB the tests already use), and stops them with scripts/infra-down.sh when the
// test ends. It returns their addresses and the broker's process id.
func ownBroker(t *testing.T) (namesrv, broker string, brokerPid int) {
	t.Helper()
	nsPort, brPort := freePorts(t)
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	my, err := mysql.ParseDSN(testenv.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	_, myPort, err := net.SplitHostPort(my.Addr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := append(os.Environ(),
		"INFRA_DIR="+dir,
		"JAR_CACHE="+filepath.Join(root, ".infra"),
		"MYSQL_PORT="+myPort, "MYSQL_USER="+my.User, "MYSQL_PASSWORD="+my.Passwd,
		fmt.Sprintf("NAMESRV_PORT=%d", nsPort),
		fmt.Sprintf("BROKER_PORT=%d", brPort),
	)
	// Registered first, so it also runs after a failed start. It stops only what infra-up.sh
	// started under dir: the MariaDB it re-used is not touched.
	t.Cleanup(func() {
		down := exec.Command(filepath.Join(root, "scripts", "infra-down.sh"), "--wipe")
		down.Env = env
		if out, err := down.CombinedOutput(); err != nil {
			t.Errorf("stop the test's broker: %v\n%s", err, out)
		}
	})
	start := time.Now()
	up := exec.Command(filepath.Join(root, "scripts", "infra-up.sh"))
	up.Env = env
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("start the test's broker: %v\n%s", err, out)
	}
	t.Logf("own NameServer and Broker started in %v", time.Since(start).Round(time.Millisecond))
	raw, err := os.ReadFile(filepath.Join(dir, "broker", "broker.pid"))
	if err != nil {
		t.Fatalf("broker pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("broker pid %q: %v", raw, err)
	}
	return fmt.Sprintf("127.0.0.1:%d", nsPort), fmt.Sprintf("127.0.0.1:%d", brPort), pid
}

// gone reports whether process pid has exited (a zombie waiting to be reaped counts as gone).
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestPostOrdersBrokerGone(t *testing.T) {
	t.Parallel()
	namesrv, broker, brokerPid := ownBroker(t)

	adm, err := mq.NewAdmin([]string{namesrv})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	topic := testenv.Unique("orders")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := adm.EnsureTopic(ctx, topic, broker, 4); err != nil {
		t.Fatal(err)
	}

	// order-service as main wires it: the real transactional producer, the Service its listener.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New(testenv.OpenDB(t, testenv.NewDatabase(t, "orders"), store.Schema))
	reg := prometheus.NewRegistry()
	metrics, err := order.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var p rocketmq.TransactionProducer
	svc, err := order.NewService(st, metrics, log, order.Config{
		Topic: topic,
		NewProducer: func(l primitive.TransactionListener) (order.Producer, error) {
			var err error
			p, err = rocketmq.NewTransactionProducer(l,
				rmqproducer.WithNsResolver(mq.Resolver([]string{namesrv})),
				rmqproducer.WithGroupName(testenv.Unique("pg")),
				rmqproducer.WithInstanceName(mq.InstanceName("test-order")),
				rmqproducer.WithSendMsgTimeout(3*time.Second),
			)
			return p, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	if err := svc.Warmup(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{h: NewServer(log, svc, svc, admission(t, reg, 1), false, map[string]httpx.Check{"mysql": st.Ping}, reg), store: st}

	// With the broker up, an order is placed.
	rec := f.do("POST", "/orders", good, nil)
	var created orderBody
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || rec.Code != http.StatusCreated {
		t.Fatalf("POST with the broker up = %d %s (%v)", rec.Code, rec.Body, err)
	}

	// The broker goes away (kill -9); the producer still has its route.
	if err := syscall.Kill(brokerPid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the broker: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "the broker to exit", func() bool { return gone(brokerPid) })

	start := time.Now()
	rec = f.do("POST", "/orders", good, nil)
	t.Logf("POST with the broker gone answered in %v", time.Since(start).Round(time.Millisecond))
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || e.Error.Code != "broker_unavailable" {
		t.Fatalf("POST with the broker gone = %d %s, want 503 broker_unavailable", rec.Code, rec.Body)
	}
	rows, err := st.OrdersByUser(context.Background(), "u1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].OrderID != created.Order.OrderID {
		t.Fatalf("orders = %+v, want only %s: nothing may be written while the broker is gone", rows, created.Order.OrderID)
	}
}
