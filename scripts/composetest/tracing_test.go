package composetest

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// jaegerOTLPHTTPPort is where Jaeger's all-in-one image receives OTLP over HTTP.
const jaegerOTLPHTTPPort = "4318"

func jaeger(t *testing.T, p *types.Project) types.ServiceConfig {
	t.Helper()
	for _, s := range p.Services {
		if repo, _, _ := splitImage(s.Image); repo == "jaegertracing/all-in-one" {
			return s
		}
	}
	t.Fatal("no service runs jaegertracing/all-in-one: docker compose --profile tracing has nothing to send spans to")
	return types.ServiceConfig{}
}

// Jaeger is optional: only the tracing profile starts it, it receives OTLP over HTTP, and its UI is
// published on loopback.
func TestJaegerIsAnOptionalTracingProfile(t *testing.T) {
	p := load(t)
	j := jaeger(t, p)
	if !slices.Equal(j.Profiles, []string{"tracing"}) {
		t.Errorf("%s: profiles %v, want only [tracing]: a plain `docker compose up` should not run it", j.Name, j.Profiles)
	}
	if v, _ := env(t, j, "COLLECTOR_OTLP_ENABLED"); v != "true" {
		t.Errorf("%s: COLLECTOR_OTLP_ENABLED = %q, want true (the services export OTLP)", j.Name, v)
	}
	ui := false
	for _, pc := range j.Ports {
		ui = ui || (pc.Target == 16686 && pc.HostIP == "127.0.0.1")
	}
	if !ui {
		t.Errorf("%s: the UI (16686) is not published on 127.0.0.1", j.Name)
	}
}

// The services export spans only when asked to: with nothing in the environment tracing is off,
// and the documented setting points them at Jaeger's OTLP/HTTP receiver.
func TestServicesExportTracesOnlyWhenAsked(t *testing.T) {
	off := load(t)
	on := load(t, "OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318")
	j := jaeger(t, on)
	for name := range goServices {
		t.Run(name, func(t *testing.T) {
			s, err := off.GetService(name)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := env(t, s, "OTEL_EXPORTER_OTLP_ENDPOINT")
			if !ok {
				t.Fatalf("%s: OTEL_EXPORTER_OTLP_ENDPOINT is not passed through; the tracing profile could not reach it", name)
			}
			if v != "" {
				t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT = %q by default, want empty (tracing off unless asked)", name, v)
			}

			s, _ = on.GetService(name)
			v, _ = env(t, s, "OTEL_EXPORTER_OTLP_ENDPOINT")
			u, err := url.Parse(v)
			if err != nil || u.Scheme != "http" || u.Hostname() != j.Name || u.Port() != jaegerOTLPHTTPPort {
				t.Errorf("%s: with OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318 set, the service gets %q; want http://%s:%s",
					name, v, j.Name, jaegerOTLPHTTPPort)
			}
			if _, ok := s.DependsOn[j.Name]; ok {
				t.Errorf("%s depends on %s, which only runs under the tracing profile", name, j.Name)
			}
		})
	}
}

// The benchmark's settings never reach the suite by default: a PLACEMENT other than transactional
// places orders a wrong way (order-service/internal/order/wrong.go; the scenarios under
// scripts/scenarios/wrong/ set it for one run), and profiles are for debugging.
func TestNoBenchmarkSettings(t *testing.T) {
	p := load(t)
	for name := range goServices {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := env(t, s, "PLACEMENT"); ok && strings.ToLower(v) != "transactional" {
			t.Errorf("%s: PLACEMENT = %q; the wrong placements are for the benchmark and scripts/scenarios/wrong/ only", name, v)
		}
		if v, ok := env(t, s, "PPROF"); ok && strings.ToLower(v) != "off" {
			t.Errorf("%s: PPROF = %q; profiling endpoints are for debugging, off in the suite", name, v)
		}
	}
}
