package main

// The cart-crash-after-commit fault for real: the service runs as a child process (this test
// binary, re-executed as cart-service), kills itself with SIGKILL after its cart commit and before
// acknowledging, and is started again. The broker delivers the message again; the restarted
// service finds the order in processed_orders and acknowledges it without a second decrement and
// without crashing again.

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"rmqtx/pkg/events"
	"rmqtx/pkg/faults"
	"rmqtx/pkg/mq"
	"rmqtx/pkg/testenv"
)

// runAsServiceEnv makes the test binary behave as the cart-service command.
const runAsServiceEnv = "CART_SERVICE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsServiceEnv) == "1" {
		main()
		return
	}
	// Before any RocketMQ client exists: the client library's log goes nowhere in this test
	// process (the tests read the service's own log lines), and the runs the tests start leave
	// the library's logger alone.
	mq.RouteClientLogs(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

type process struct {
	*service
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has ended; cmd.ProcessState is set then
}

// startProcess starts cart-service as a child process and waits until it listens.
func startProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), runAsServiceEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := newLogSink()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = logs, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			logs.dump(t)
			t.Logf("stderr of pid %d:\n%s", cmd.Process.Pid, stderr.String())
		}
	})
	select {
	case addr := <-logs.listening:
		p.service = &service{url: "http://" + addr, logs: logs, stop: func() error {
			// SIGTERM: the graceful path, which must end with exit status 0.
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				return err
			}
			select {
			case <-p.exited:
			case <-time.After(60 * time.Second):
				return errors.New("no exit within 60s of SIGTERM")
			}
			if !cmd.ProcessState.Success() {
				return errors.New("exit after SIGTERM: " + cmd.ProcessState.String())
			}
			return nil
		}}
		return p
	case <-p.exited:
		logs.dump(t)
		t.Fatalf("cart-service exited at start: %v\n%s", cmd.ProcessState, stderr.String())
	case <-time.After(90 * time.Second):
		logs.dump(t)
		t.Fatalf("cart-service did not listen within 90s")
	}
	return nil
}

func TestCrashAfterCommitThenRestart(t *testing.T) {
	t.Parallel()
	topic := testenv.NewTopic(t, "cartcrash")
	env := map[string]string{
		"HTTP_ADDR":            "127.0.0.1:0",
		"MYSQL_DSN":            testenv.NewDatabase(t, "cartcrash"),
		"ROCKETMQ_NAMESRV":     strings.Join(testenv.Namesrv(), ";"),
		"ROCKETMQ_BROKER_ADDR": testenv.Broker(),
		"ROCKETMQ_TOPIC":       topic,
		"ROCKETMQ_GROUP":       testenv.Unique("cart_cg"),
		"FAULT_INJECTION":      "on",
		"LOG_LEVEL":            "debug",
	}
	prod := newProducer(t)

	first := startProcess(t, env)
	first.put(t, "u1", "A-1", 5)
	first.put(t, "u1", "B-2", 1)
	publish(t, prod, topic, "o-crash", eventBody(t, "o-crash", "u1", events.Item{SKU: "A-1", Quantity: 2}), faults.CartCrashAfterCommit)

	select {
	case <-first.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("cart-service did not crash within 60s of the event")
	}
	crashed := time.Now()
	ws, ok := first.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("first process ended with %v, want killed by SIGKILL", first.cmd.ProcessState)
	}
	if _, ok := first.logs.at("order applied to cart", "o-crash"); !ok {
		t.Fatalf("the first process crashed without applying the order")
	}

	second := startProcess(t, env)
	// The commit survived the crash...
	second.applied(t, "u1", "o-crash")
	// ...and the unacknowledged message comes again, to be acknowledged as a duplicate.
	second.waitMetric(t, `cart_messages_total{outcome="duplicate"}`, 1)
	t.Logf("crash -> redelivery acknowledged by the restarted service: %v", time.Since(crashed).Round(time.Millisecond))

	if diff := cmp.Diff(map[string]int{"A-1": 3, "B-2": 1}, second.cart(t, "u1")); diff != "" {
		t.Errorf("cart after crash and redelivery (-want +got):\n%s", diff)
	}
	if got := second.metric(t, `cart_messages_total{outcome="applied"}`); got != 0 {
		t.Errorf("the restarted service applied %v orders, want 0", got)
	}
	if status, _ := httpDo(t, "GET", second.url+"/healthz", ""); status != http.StatusOK {
		t.Errorf("restarted service /healthz: %d", status)
	}
	select {
	case <-second.exited:
		t.Fatalf("the restarted service crashed again: %v", second.cmd.ProcessState)
	default:
	}
	if err := second.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}
