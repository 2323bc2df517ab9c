package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"rmqtx/order-service/internal/order"
	"rmqtx/pkg/testenv"
)

// The PLACEMENT setting is checked like every other: a wrong value stops the service at start,
// with one line naming the setting and what it accepts.
func TestRunRejectsUnknownPlacement(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"MYSQL_DSN":        "u:p@tcp(127.0.0.1:1)/orders",
		"ROCKETMQ_NAMESRV": "127.0.0.1:1",
		"PLACEMENT":        "fire-and-forget",
	}
	err := run(context.Background(), func(k string) string { return env[k] }, &strings.Builder{})
	want := "PLACEMENT must be one of transactional, outbox, direct, save-then-send, send-then-save, naive-check-back, memory-check-back, no-check-back"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("run = %v, want one line containing %q", err, want)
	}
}

// A wrong way can never run by accident: every placement but the two right ones stops the
// service at start unless FAULT_INJECTION=on, with one line naming both settings, before any
// server is contacted (the addresses here lead nowhere).
func TestRunRefusesAWrongPlacementWithoutFaultInjection(t *testing.T) {
	t.Parallel()
	for _, placement := range order.Placements {
		if placement == order.PlacementTransactional || placement == order.PlacementOutbox {
			continue
		}
		for _, faults := range []string{"", "off"} {
			env := map[string]string{
				"MYSQL_DSN":        "u:p@tcp(127.0.0.1:1)/orders",
				"ROCKETMQ_NAMESRV": "127.0.0.1:1",
				"PLACEMENT":        placement,
				"FAULT_INJECTION":  faults,
			}
			var out strings.Builder
			err := run(context.Background(), func(k string) string { return env[k] }, &out)
			want := "PLACEMENT=" + placement + " places orders a wrong way on purpose and starts only with FAULT_INJECTION=on"
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("PLACEMENT=%s FAULT_INJECTION=%q: run = %v, want one line containing %q", placement, faults, err, want)
			}
			if out.Len() != 0 {
				t.Errorf("PLACEMENT=%s: the service logged before refusing:\n%s", placement, out.String())
			}
		}
	}
}

func TestRunRejectsAMalformedTracingEndpoint(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"MYSQL_DSN":                   "u:p@tcp(127.0.0.1:1)/orders",
		"ROCKETMQ_NAMESRV":            "127.0.0.1:1",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger:4318",
	}
	err := run(context.Background(), func(k string) string { return env[k] }, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") {
		t.Fatalf("run = %v, want an error naming OTEL_EXPORTER_OTLP_ENDPOINT", err)
	}
}

// A wrong way that runs says so loudly: a WARN at start, order_placement_mode on /metrics, and the
// web page's configuration (its banner).
func TestRunInAWrongPlacementSaysSo(t *testing.T) {
	t.Parallel()
	svc := startService(t, map[string]string{"FAULT_INJECTION": "on", "PLACEMENT": order.PlacementNaiveCheckBack})
	get := func(path string) string { _, body := svc.get(path); return body }
	testenv.Eventually(t, 60*time.Second, "/metrics served", func() bool { return get("/metrics") != "" })

	if !strings.Contains(svc.out.String(), `"level":"WARN","msg":"PLACEMENT=naive-check-back: this instance places orders a WRONG way`) {
		t.Errorf("no WARN naming the placement at start; log:\n%s", svc.out.String())
	}
	if m := get("/metrics"); !strings.Contains(m, `order_placement_mode{mode="naive-check-back"} 1`) {
		t.Errorf("/metrics has no order_placement_mode{mode=\"naive-check-back\"} 1:\n%s", m)
	}
	if c := get("/ui/config"); !strings.Contains(c, `"placement":"naive-check-back"`) || !strings.Contains(c, `"wrong_way":"the check-back answers`) {
		t.Errorf("/ui/config does not tell the page: %s", c)
	}
}

// The outbox is a right way: it starts without FAULT_INJECTION, logs no WARN about a wrong way,
// reports its mode, and its readiness leaves the broker out (it places orders without it).
func TestRunInTheOutboxPlacementNeedsNoFaultInjection(t *testing.T) {
	t.Parallel()
	svc := startService(t, map[string]string{"PLACEMENT": order.PlacementOutbox})
	get := func(path string) string { _, body := svc.get(path); return body }
	testenv.Eventually(t, 60*time.Second, "/metrics served", func() bool { return get("/metrics") != "" })

	if m := get("/metrics"); !strings.Contains(m, `order_placement_mode{mode="outbox"} 1`) || !strings.Contains(m, "outbox_rows 0") {
		t.Errorf("/metrics has no order_placement_mode{mode=\"outbox\"} 1 and outbox_rows 0:\n%s", m)
	}
	if r := get("/readyz"); !strings.Contains(r, `"mysql"`) || strings.Contains(r, `"rocketmq"`) {
		t.Errorf("/readyz = %s, want the mysql check and no rocketmq check", r)
	}
	if strings.Contains(svc.out.String(), "WRONG way") {
		t.Errorf("the outbox logged a wrong-way WARN:\n%s", svc.out.String())
	}
}
