package e2e

// One order followed across the broker: both services run as processes and export their spans
// with OTLP over HTTP to a receiver in this test. The trace context of the HTTP request must reach
// cart-service's consumer through the message's properties, including when the message is
// committed by a check-back instead of by the request; and the services' log lines must carry the
// same trace ID.

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"rmqtx/pkg/testenv"
)

// span is what the test needs of an exported span.
type span struct {
	service, name           string
	traceID, spanID, parent string
	links                   []string // span IDs
	orderID                 string   // the order.id attribute, if any
}

// otlpReceiver collects the spans posted to /v1/traces.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []span
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body := io.Reader(req.Body)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	var export collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(raw, &export)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range export.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got := span{service: service, name: s.GetName(), traceID: hex.EncodeToString(s.GetTraceId()),
					spanID: hex.EncodeToString(s.GetSpanId()), parent: hex.EncodeToString(s.GetParentSpanId())}
				for _, l := range s.GetLinks() {
					got.links = append(got.links, hex.EncodeToString(l.GetSpanId()))
				}
				for _, a := range s.GetAttributes() {
					if a.GetKey() == "order.id" {
						got.orderID = a.GetValue().GetStringValue()
					}
				}
				r.spans = append(r.spans, got)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// find returns the first span of service named name with the order ID (any order if "").
func (r *otlpReceiver) find(service, name, orderID string) (span, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.service == service && s.name == name && (orderID == "" || s.orderID == orderID) {
			return s, true
		}
	}
	return span{}, false
}

// inTrace returns the spans of service named name in the trace.
func (r *otlpReceiver) inTrace(traceID, service, name string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if s.traceID == traceID && s.service == service && s.name == name {
			out = append(out, s)
		}
	}
	return out
}

func (r *otlpReceiver) wait(t *testing.T, service, name, orderID string) span {
	t.Helper()
	var got span
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("a %s span %q for order %s", service, name, orderID), func() bool {
		var ok bool
		got, ok = r.find(service, name, orderID)
		return ok
	})
	return got
}

func TestTraceFollowsAnOrderAcrossTheBroker(t *testing.T) {
	t.Parallel()
	needSuiteBroker(t)
	rec := &otlpReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	common := map[string]string{
		"ROCKETMQ_NAMESRV":     "127.0.0.1:" + e2eNamesrvPort,
		"ROCKETMQ_BROKER_ADDR": "127.0.0.1:" + e2eBrokerPort,
		"ROCKETMQ_TOPIC":       testenv.Unique("e2e_trace"),
		"FAULT_INJECTION":      "on",
		"LOG_LEVEL":            "info",
		// Standard OpenTelemetry settings: where to send spans, and send them every 100 ms
		// instead of every 5 s.
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + ln.Addr().String(),
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cart := newProc("cart", cartBin, testenv.FreeAddr(t), with(map[string]string{
		"MYSQL_DSN": testenv.NewDatabase(t, "e2e_carts"), "ROCKETMQ_GROUP": testenv.Unique("e2e_cg")}))
	order := newProc("order", orderBin, testenv.FreeAddr(t), with(map[string]string{
		"MYSQL_DSN": testenv.NewDatabase(t, "e2e_orders"), "ROCKETMQ_GROUP": testenv.Unique("e2e_pg")}))
	t.Cleanup(func() { order.stop(t); cart.stop(t) })
	order.start(t)
	cart.start(t)
	s := &suite{orders: []*proc{order}, cart: cart}
	s.fill(t, "tracer", map[string]int{"A": 10})

	t.Run("committed by the request", func(t *testing.T) {
		// The caller's own trace: the order's spans must continue it.
		const traceID, callerSpan = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
		a := place(order, orderBody("tracer", map[string]int{"A": 1}),
			map[string]string{"traceparent": "00-" + traceID + "-" + callerSpan + "-01"})
		if a.status != http.StatusCreated {
			t.Fatalf("POST /orders = %d %s %v", a.status, a.code, a.err)
		}
		id := a.order.OrderID

		consume := rec.wait(t, "cart-service", "consume OrderCreated", id)
		if consume.traceID != traceID {
			t.Fatalf("cart-service's consume span for order %s is in trace %s, want the HTTP request's trace %s",
				id, consume.traceID, traceID)
		}
		// The whole chain, parent by parent: request > send > local transaction; send > consume >
		// apply.
		var requests []span
		testenv.Eventually(t, 60*time.Second, "order-service's request span", func() bool {
			requests = rec.inTrace(traceID, "order-service", "POST /orders")
			return len(requests) > 0
		})
		if len(requests) != 1 || requests[0].parent != callerSpan {
			t.Fatalf("order-service request spans in the trace: %+v; want one, child of the caller's span %s", requests, callerSpan)
		}
		send := rec.wait(t, "order-service", "send half message", id)
		local := rec.wait(t, "order-service", "local transaction", id)
		apply := rec.wait(t, "cart-service", "apply to cart", id)
		for _, c := range []struct {
			child, parent span
		}{{send, requests[0]}, {local, send}, {consume, send}, {apply, consume}} {
			if c.child.traceID != traceID || c.child.parent != c.parent.spanID {
				t.Errorf("%s %q: trace %s, parent %s; want trace %s, parent %s %q (%s)", c.child.service, c.child.name,
					c.child.traceID, c.child.parent, traceID, c.parent.service, c.parent.name, c.parent.spanID)
			}
		}

		// The log lines of both services carry the trace ID.
		s.waitCart(t, "tracer", map[string]int{"A": 9}, time.Now(), 30*time.Second)
		wantLogLine(t, order, "order created", id, traceID)
		wantLogLine(t, cart, "order applied to cart", id, traceID)
	})

	t.Run("committed by a check-back", func(t *testing.T) {
		// The answer to the broker is withheld: the broker asks back, and the check-back commits.
		a := place(order, orderBody("tracer", map[string]int{"A": 2}), map[string]string{"X-Fault": "skip-end-transaction"})
		if a.status != http.StatusCreated {
			t.Fatalf("POST /orders = %d %s %v", a.status, a.code, a.err)
		}
		id := a.order.OrderID
		send := rec.wait(t, "order-service", "send half message", id)

		check := rec.wait(t, "order-service", "check-back", id)
		if check.parent != "" || check.traceID == send.traceID {
			t.Errorf("check-back span: trace %s, parent %q; want a new trace of its own (the order's is %s)", check.traceID, check.parent, send.traceID)
		}
		if len(check.links) != 1 || check.links[0] != send.spanID {
			t.Errorf("check-back span links %v, want one link to the order's send span %s", check.links, send.spanID)
		}
		// The message the check-back committed still carries the request's trace context.
		consume := rec.wait(t, "cart-service", "consume OrderCreated", id)
		if consume.traceID != send.traceID || consume.parent != send.spanID {
			t.Errorf("consume span: trace %s, parent %s; want the request's trace %s under the send span %s",
				consume.traceID, consume.parent, send.traceID, send.spanID)
		}
	})
}

// wantLogLine finds the service's log line with msg for the order and checks its trace_id.
func wantLogLine(t *testing.T, p *proc, msg, orderID, traceID string) {
	t.Helper()
	// The harness names each process's log after the test and the process (proc.start).
	name := strings.NewReplacer("/", "_", " ", "_").Replace(strings.Split(t.Name(), "/")[0])
	logs, _ := filepath.Glob(filepath.Join(artifacts, name[:min(len(name), 60)]+"-"+p.name+".*.log"))
	for _, path := range logs {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(raw) {
			if bytes.Contains(line, []byte(`"msg":"`+msg+`"`)) && bytes.Contains(line, []byte(orderID)) {
				if !bytes.Contains(line, []byte(`"trace_id":"`+traceID+`"`)) {
					t.Errorf("%s log line %q has no trace_id %s:\n%s", p.name, msg, traceID, line)
				}
				return
			}
		}
	}
	t.Errorf("no %s log line %q for order %s in %v", p.name, msg, orderID, logs)
}
