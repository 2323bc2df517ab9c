package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The real wiring starts against the real servers, becomes ready, and stops cleanly when its
// context ends (as on SIGTERM).
func TestRunStartsAndShutsDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{
		"HTTP_ADDR":            addr,
		"MYSQL_DSN":            testenv.NewDatabase(t, "orders"),
		"ROCKETMQ_NAMESRV":     strings.Join(testenv.Namesrv(), ";"),
		"ROCKETMQ_BROKER_ADDR": testenv.Broker(),
		"ROCKETMQ_TOPIC":       testenv.Unique("main"),
		"ROCKETMQ_GROUP":       testenv.Unique("pg"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &out) }()

	testenv.Eventually(t, 60*time.Second, "readyz 200", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://%s/readyz", addr))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	resp, err := http.Post(fmt.Sprintf("http://%s/orders", addr), "application/json",
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
	resp, err = http.Get(fmt.Sprintf("http://%s/ui/config", addr))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `"cart_connected":false`) || !strings.Contains(string(page), `"timeline":true`) {
		t.Fatalf("GET /ui/config = %d %s", resp.StatusCode, page)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown; log:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s of shutdown")
	}
	if !strings.Contains(out.String(), `"msg":"shutting down"`) {
		t.Fatalf("no shutdown line in log:\n%s", out.String())
	}
}

// SIGTERM (here: the context run watches for it, ended) stops taking requests but lets an order
// in flight finish within SHUTDOWN_TIMEOUT: its client gets 201, and run returns without error.
func TestRunFinishesAnOrderInFlightOnShutdown(t *testing.T) {
	t.Parallel()
	addr := freeLoopbackAddr(t)
	env := map[string]string{
		"HTTP_ADDR":            addr,
		"MYSQL_DSN":            testenv.NewDatabase(t, "orders"),
		"ROCKETMQ_NAMESRV":     strings.Join(testenv.Namesrv(), ";"),
		"ROCKETMQ_BROKER_ADDR": testenv.Broker(),
		"ROCKETMQ_TOPIC":       testenv.Unique("shutdown"),
		"ROCKETMQ_GROUP":       testenv.Unique("pg"),
		"FAULT_INJECTION":      "on",
		"SHUTDOWN_TIMEOUT":     "20s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &out) }()
	testenv.Eventually(t, 60*time.Second, "readyz 200", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// An order whose local transaction takes 2 s.
	answer := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr+"/orders",
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
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		m, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(m), "\nhttp_admission_in_flight 1\n")
	})
	cancel() // SIGTERM
	if code := <-answer; code != http.StatusCreated {
		t.Fatalf("the order in flight at shutdown was answered %d, want 201", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown; log:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s of shutdown")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("the service still answers after run returned")
	}
}
