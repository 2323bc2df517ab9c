package main

import (
	"context"
	"strings"
	"testing"
)

// The benchmark-only PLACEMENT setting is checked like every other: a wrong value stops the
// service at start, with one line naming the setting and what it accepts.
func TestRunRejectsUnknownPlacement(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"MYSQL_DSN":        "u:p@tcp(127.0.0.1:1)/orders",
		"ROCKETMQ_NAMESRV": "127.0.0.1:1",
		"PLACEMENT":        "fire-and-forget",
	}
	err := run(context.Background(), func(k string) string { return env[k] }, &strings.Builder{})
	want := "PLACEMENT must be one of transactional, direct, dual-write, outbox"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("run = %v, want one line containing %q", err, want)
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
