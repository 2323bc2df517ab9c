package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"rmqtx/pkg/testenv"
)

func TestRunRejectsBadConfigWithOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"ROCKETMQ_NAMESRV": "127.0.0.1:9876"}, "MYSQL_DSN is required"},
		{map[string]string{"MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/orders"}, "ROCKETMQ_NAMESRV is required"},
		{map[string]string{"MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/orders", "ROCKETMQ_NAMESRV": "127.0.0.1:9876", "LOCAL_TX_TIMEOUT": "soon"}, "LOCAL_TX_TIMEOUT"},
		{map[string]string{"MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/orders", "ROCKETMQ_NAMESRV": "127.0.0.1:9876", "CART_URL": "cart-service:8082"}, "CART_URL"},
		{map[string]string{"MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/orders", "ROCKETMQ_NAMESRV": "127.0.0.1:9876", "TIMELINE": "maybe"}, "TIMELINE"},
		{map[string]string{"MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/orders", "ROCKETMQ_NAMESRV": "127.0.0.1:9876", "MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT must be a whole number from 1 to 32"},
		{map[string]string{"MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/orders", "ROCKETMQ_NAMESRV": "127.0.0.1:9876", "MAX_IN_FLIGHT": "33"}, "MAX_IN_FLIGHT"},
		{map[string]string{"MYSQL_DSN": "u:p@tcp(127.0.0.1:3306)/orders", "ROCKETMQ_NAMESRV": "127.0.0.1:9876", "ADMISSION_WAIT": "5s"}, "ADMISSION_WAIT must be a duration from 0 to 1s"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(context.Background(), func(k string) string { return tt.env[k] }, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("run with %v: err = %v, want one line containing %q", tt.env, err, tt.want)
		}
	}
}

// The real wiring starts against the real servers, becomes ready, and stops cleanly when its
// context ends (as on SIGTERM).
func TestRunStartsAndShutsDown(t *testing.T) {
	t.Parallel()
	svc := startService(t, nil)
	svc.waitReady(t)
	resp, err := http.Post("http://"+svc.addr+"/orders", "application/json",
		strings.NewReader(`{"user_id":"u1","items":[{"sku":"A","quantity":1,"unit_price_cents":100}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST /orders = %d", resp.StatusCode)
	}
	// The web page is wired in front of the API; without CART_URL it says cart-service is not
	// connected.
	if code, page := svc.get("/ui/config"); code != 200 || !strings.Contains(page, `"cart_connected":false`) || !strings.Contains(page, `"timeline":true`) {
		t.Fatalf("GET /ui/config = %d %s", code, page)
	}
	if err := svc.stop(); err != nil {
		t.Fatalf("run returned %v after shutdown; log:\n%s", err, svc.out.String())
	}
	if !strings.Contains(svc.out.String(), `"msg":"shutting down"`) {
		t.Fatalf("no shutdown line in log:\n%s", svc.out.String())
	}
}

// SIGTERM (here: the context run watches for it, ended) stops taking requests but lets an order
// in flight finish within SHUTDOWN_TIMEOUT: its client gets 201, and run returns without error.
func TestRunFinishesAnOrderInFlightOnShutdown(t *testing.T) {
	t.Parallel()
	svc := startService(t, map[string]string{"FAULT_INJECTION": "on", "SHUTDOWN_TIMEOUT": "20s"})
	svc.waitReady(t)

	// An order whose local transaction takes 2 s.
	answer := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+svc.addr+"/orders",
			strings.NewReader(`{"user_id":"u1","items":[{"sku":"A","quantity":1,"unit_price_cents":100}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Fault", "slow-local-tx=2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("POST /orders during shutdown: %v", err)
			answer <- 0
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	testenv.Eventually(t, 10*time.Second, "the order in flight", func() bool {
		_, m := svc.get("/metrics")
		return strings.Contains(m, "\nhttp_admission_in_flight 1\n")
	})
	stopped := make(chan error, 1)
	go func() { stopped <- svc.stop() }() // SIGTERM
	if code := <-answer; code != http.StatusCreated {
		t.Fatalf("the order in flight at shutdown was answered %d, want 201", code)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run returned %v after shutdown; log:\n%s", err, svc.out.String())
	}
	if code, _ := svc.get("/healthz"); code != 0 {
		t.Errorf("the service still answers (%d) after run returned", code)
	}
}
