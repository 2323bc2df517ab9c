package main

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"rmqtx/order-service/internal/order"
	"rmqtx/pkg/testenv"
)

// The outbox accepts orders while the broker is down, so an instance must be able to start while
// it is down, too: it is ready, places orders (201, their events wait in the outbox), and once the
// NameServer and the broker answer it makes the topic and publishes what waited. The test's
// servers are the real ones, behind two gates that drop every connection until the test opens
// them. The NameServer's gate is the one that stops the sends: the routes it hands out name the
// real broker, which the producers then dial directly; the broker's gate stands between the
// service and the broker address it is given (ROCKETMQ_BROKER_ADDR), where it makes the topic.
func TestRunInTheOutboxPlacementStartsWithoutTheBroker(t *testing.T) {
	t.Parallel()
	namesrv := openGate(t, testenv.Namesrv()[0])
	broker := openGate(t, testenv.Broker())
	namesrv.Close()
	broker.Close()

	svc := startService(t, map[string]string{
		"ROCKETMQ_NAMESRV":     namesrv.Addr(),
		"ROCKETMQ_BROKER_ADDR": broker.Addr(),
		"PLACEMENT":            order.PlacementOutbox,
	})
	get, addr, out := svc.get, svc.addr, svc.out
	metric := func(name string) float64 {
		_, m := get("/metrics")
		match := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(m)
		if match == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(match[1], 64)
		return v
	}

	testenv.Eventually(t, 60*time.Second, "readyz 200 with the broker down", func() bool {
		code, _ := get("/readyz")
		return code == http.StatusOK
	})
	for i := range 3 {
		resp, err := http.Post("http://"+addr+"/orders", "application/json",
			strings.NewReader(`{"user_id":"u`+strconv.Itoa(i)+`","items":[{"sku":"A","quantity":1,"unit_price_cents":100}]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /orders with the broker down = %d %s, want 201", resp.StatusCode, body)
		}
	}
	if rows := metric("outbox_rows"); rows != 3 {
		t.Fatalf("outbox_rows = %v with the broker down, want 3 (the events wait)", rows)
	}
	testenv.Eventually(t, 30*time.Second, "a log line saying the broker is not there yet", func() bool {
		return strings.Contains(out.String(), "the broker or the topic is not there yet")
	})
	if rows := metric("outbox_rows"); rows != 3 {
		t.Fatalf("outbox_rows = %v while the broker stayed down, want 3", rows)
	}

	namesrv.Open()
	broker.Open()
	opened := time.Now()
	testenv.Eventually(t, 90*time.Second, "the outbox published once the broker answered", func() bool {
		return metric("outbox_rows") == 0 && metric("outbox_published_total") >= 3
	})
	t.Logf("the waiting events published %v after the broker answered", time.Since(opened).Round(time.Millisecond))
	testenv.Eventually(t, 60*time.Second, "a log line saying the topic is available", func() bool {
		return strings.Contains(out.String(), `"msg":"outbox: topic available"`)
	})
}

// gate forwards TCP connections to a server, or accepts and at once closes them while closed (and
// drops the ones it carried when it closes): a server that is down, for one test, while the
// others share it.
type gate struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func openGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go g.serve()
	t.Cleanup(func() {
		ln.Close()
		g.Close()
	})
	return g
}

func (g *gate) Addr() string { return g.ln.Addr().String() }

// Open lets connections through.
func (g *gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = false
}

// Close refuses new connections and drops the open ones.
func (g *gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
	clear(g.conns)
}

func (g *gate) serve() {
	for {
		client, err := g.ln.Accept()
		if err != nil {
			return // closed at cleanup
		}
		go g.forward(client)
	}
}

func (g *gate) forward(client net.Conn) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		client.Close()
		return
	}
	server, err := net.Dial("tcp", g.target)
	if err != nil {
		client.Close()
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	g.conns[client], g.conns[server] = struct{}{}, struct{}{}
	g.mu.Unlock()
	go func() {
		_, _ = io.Copy(server, client)
		server.Close()
		client.Close()
	}()
	_, _ = io.Copy(client, server)
	client.Close()
	server.Close()
}
