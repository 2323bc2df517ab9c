// Package tracing follows one order from the HTTP request that placed it to the cart change it
// caused, across the hop that HTTP instrumentation cannot see: the RocketMQ message.
//
// OpenTelemetry's W3C trace context (the traceparent and tracestate values) arrives in the HTTP
// headers of POST /orders, is written into the user properties of the OrderCreated message when
// order-service builds it, survives the broker (half message, commit, check-back re-put, retry
// topic), and is read back by cart-service's consumer, whose spans then join the same trace.
//
// Tracing is configured by the standard OpenTelemetry environment variables. With neither
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT nor OTEL_EXPORTER_OTLP_ENDPOINT set (or with
// OTEL_SDK_DISABLED=true) the Provider is a no-op: spans cost an interface call and nothing is
// exported or kept. Nothing here is global: each service builds one Provider and passes it on.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Provider is a service's tracer provider and the propagator that carries trace context in and
// out of the service. The zero value is not usable; see Setup and Disabled.
type Provider struct {
	trace.TracerProvider
	propagator propagation.TextMapPropagator
	enabled    bool
	shutdown   func(context.Context) error
}

// Disabled is a Provider that records nothing. Tests and tools use it where tracing is not the
// point.
func Disabled() *Provider {
	return &Provider{
		TracerProvider: noop.NewTracerProvider(),
		propagator:     newPropagator(),
		shutdown:       func(context.Context) error { return nil },
	}
}

// New wraps a tracer provider that the caller built (tests pass one with a span recorder).
func New(tp trace.TracerProvider) *Provider {
	return &Provider{TracerProvider: tp, propagator: newPropagator(), enabled: true,
		shutdown: func(context.Context) error { return nil }}
}

// newPropagator is W3C trace context plus baggage, the OpenTelemetry default set.
func newPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup builds the Provider of the service named service from the standard environment:
//
//   - OTEL_SDK_DISABLED=true turns tracing off;
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL) or OTEL_EXPORTER_OTLP_ENDPOINT (a base URL,
//     to which /v1/traces is added) turns on export with OTLP over HTTP, e.g.
//     OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318;
//   - OTEL_SERVICE_NAME overrides the service name.
//
// The exporter and the SDK read the other standard variables (OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_TRACES_SAMPLER, OTEL_BSP_SCHEDULE_DELAY, OTEL_RESOURCE_ATTRIBUTES, ...) from the process
// environment themselves. Setup contacts nothing: spans are sent in the background, and an
// unreachable collector costs dropped spans, never a failed request. A malformed endpoint is an
// error naming the variable, so the service stops at start with one clear line.
func Setup(ctx context.Context, service string, getenv func(string) string) (*Provider, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return Disabled(), nil
	}
	endpoint, name, err := tracesEndpoint(getenv)
	if err != nil || endpoint == "" {
		return Disabled(), err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("config: %s: otlp exporter: %w", name, err)
	}
	if v := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); v != "" {
		service = v
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", service)))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{TracerProvider: tp, propagator: newPropagator(), enabled: true, shutdown: tp.Shutdown}, nil
}

// tracesEndpoint returns the URL spans are posted to ("" when export is off) and the variable it
// came from.
func tracesEndpoint(getenv func(string) string) (endpoint, name string, err error) {
	name, endpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
	if endpoint == "" {
		name, endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT", strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
		if endpoint == "" {
			return "", "", nil
		}
		// The base endpoint names the collector; the signal's path is added to it (OTLP spec).
		endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", name, fmt.Errorf("config: %s must be an http:// or https:// URL such as http://jaeger:4318, got %q", name, getenv(name))
	}
	return endpoint, name, nil
}

// Enabled reports whether spans are recorded and exported.
func (p *Provider) Enabled() bool { return p.enabled }

// Shutdown exports the spans still buffered, waiting at most until ctx ends.
func (p *Provider) Shutdown(ctx context.Context) error {
	if err := p.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// Flush exports the spans still buffered when a service stops, bounded at 5 s: a collector that is
// down must not hold up the shutdown. Spans lost at exit are not worth failing the exit for, so
// the error is dropped.
func (p *Provider) Flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Shutdown(ctx)
}

// HTTP wraps a service's whole router: each request becomes a server span, continuing the trace
// of an incoming traceparent header, named after the chi route ("POST /orders") rather than the
// path, which would make one span name per order ID. Probes and scrapes are not traced. With
// tracing disabled, h is returned as it is.
func (p *Provider) HTTP(h http.Handler) http.Handler {
	if !p.enabled {
		return h
	}
	named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// chi fills a route context it finds in the request instead of making its own, so the
		// matched pattern can be read here once the router is done.
		rctx := chi.NewRouteContext()
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		h.ServeHTTP(w, r)
		if pattern := rctx.RoutePattern(); pattern != "" {
			span := trace.SpanFromContext(r.Context())
			span.SetName(r.Method + " " + pattern)
			span.SetAttributes(attribute.String("http.route", pattern))
		}
	})
	return otelhttp.NewHandler(named, "http",
		otelhttp.WithTracerProvider(p.TracerProvider),
		otelhttp.WithPropagators(p.propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus' job here
		otelhttp.WithFilter(func(r *http.Request) bool {
			return !slices.Contains([]string{"/healthz", "/readyz", "/metrics"}, r.URL.Path)
		}),
	)
}

// InjectMessage writes the trace context of ctx into the message's user properties
// (traceparent, and tracestate/baggage when present). Call it before sending: the properties
// travel with the message through the broker.
func (p *Provider) InjectMessage(ctx context.Context, msg *primitive.Message) {
	p.propagator.Inject(ctx, messageCarrier{msg})
}

// ExtractMessage returns ctx carrying the remote trace context found in the message's properties
// (unchanged if there is none), for the consumer's span to continue the producer's trace.
func (p *Provider) ExtractMessage(ctx context.Context, msg *primitive.Message) context.Context {
	return p.propagator.Extract(ctx, messageCarrier{msg})
}

// messageCarrier lets a propagator read and write a RocketMQ message's user properties.
type messageCarrier struct{ msg *primitive.Message }

func (c messageCarrier) Get(key string) string { return c.msg.GetProperty(key) }
func (c messageCarrier) Set(key, value string) { c.msg.WithProperty(key, value) }
func (c messageCarrier) Keys() []string {
	props := c.msg.GetProperties()
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	return keys
}

// LogHandler adds trace_id and span_id to every record logged with a context that carries a
// span, so a log line can be looked up in the trace and the other way round. Log with the
// ...Context methods (log.InfoContext(ctx, ...)) for it to see the span.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }
