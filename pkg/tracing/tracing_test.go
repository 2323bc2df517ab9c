package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/go-chi/chi/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSetupReadsTheStandardVariables(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled bool
		wantErr     string // a substring; "" for no error
	}{
		{"nothing set: no-op", nil, false, ""},
		{"base endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{"disabled wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false, ""},
		{"no scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger:4318"}, false, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL"},
		{"bad traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "::"}, false, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Setup(context.Background(), "svc", env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if p.Enabled() != tt.wantEnabled {
				t.Errorf("Enabled() = %v, want %v", p.Enabled(), tt.wantEnabled)
			}
		})
	}
}

// The trace context survives the way the broker stores a message: its properties are encoded to
// one string and decoded again on the consumer's side.
func TestMessageCarriesTheTraceContext(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	p := New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	ctx, span := p.Tracer("test").Start(context.Background(), "send")
	span.End()

	msg := primitive.NewMessage("topic", []byte("{}")).WithKeys([]string{"order-1"})
	p.InjectMessage(ctx, msg)
	if msg.GetProperty("traceparent") == "" {
		t.Fatalf("no traceparent property after inject; properties %v", msg.GetProperties())
	}

	wire := &primitive.MessageExt{}
	wire.UnmarshalProperties([]byte(msg.MarshallProperties()))
	got := trace.SpanContextFromContext(p.ExtractMessage(context.Background(), &wire.Message))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Errorf("extracted %v/%v remote=%v, want %v/%v remote", got.TraceID(), got.SpanID(), got.IsRemote(),
			span.SpanContext().TraceID(), span.SpanContext().SpanID())
	}
	if wire.GetKeys() != "order-1" {
		t.Errorf("keys = %q after the round trip, want order-1", wire.GetKeys())
	}
}

func TestDisabledInjectsNothing(t *testing.T) {
	p := Disabled()
	ctx, span := p.Tracer("test").Start(context.Background(), "send")
	defer span.End()
	msg := primitive.NewMessage("topic", nil)
	p.InjectMessage(ctx, msg)
	if len(msg.GetProperties()) != 0 {
		t.Errorf("a disabled provider wrote properties %v", msg.GetProperties())
	}
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if got := p.HTTP(h); got == nil {
		t.Fatal("HTTP returned nil")
	}
}

func TestHTTPContinuesTheCallersTraceAndNamesTheRoute(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	p := New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	var inHandler trace.SpanContext
	r := chi.NewRouter()
	r.Get("/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		inHandler = trace.SpanContextFromContext(r.Context())
	})
	r.Get("/healthz", func(http.ResponseWriter, *http.Request) {})
	h := p.HTTP(r)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequest("GET", "/orders/0190-abc", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1 (probes are not traced)", len(spans))
	}
	s := spans[0]
	if s.Name() != "GET /orders/{id}" {
		t.Errorf("span name %q, want the route, GET /orders/{id}", s.Name())
	}
	if s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span trace %s parent %s, want the caller's trace %s and span", s.SpanContext().TraceID(), s.Parent().SpanID(), traceID)
	}
	if inHandler.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("the handler saw span %s, want the server span %s", inHandler.SpanID(), s.SpanContext().SpanID())
	}
}

func TestLogHandlerAddsTheTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "svc")
	p := New(sdktrace.NewTracerProvider())
	ctx, span := p.Tracer("test").Start(context.Background(), "op")
	defer span.End()

	log.InfoContext(ctx, "with span")
	log.Info("without span")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %s", len(lines), buf.String())
	}
	var with, without map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &with); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &without); err != nil {
		t.Fatal(err)
	}
	if with["trace_id"] != span.SpanContext().TraceID().String() || with["span_id"] != span.SpanContext().SpanID().String() || with["service"] != "svc" {
		t.Errorf("line with a span = %v, want its trace_id, span_id and the logger's attributes", with)
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("line without a span carries a trace_id: %v", without)
	}
}
