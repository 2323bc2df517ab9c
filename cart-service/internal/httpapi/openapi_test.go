package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"rmqtx/pkg/httpx"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// TestOpenAPIListsEveryRoute: openapi.json is a valid OpenAPI 3.1 document, and its operations are
// exactly the routes of routes.go. (That each answer matches it is for the end-to-end suite, which
// validates every request and answer against it.)
func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid document: %v", err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	reg := prometheus.NewRegistry()
	h := NewServer(slog.New(slog.DiscardHandler), nil, admission(t, reg), reg, nil)
	var routed []string
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed = append(routed, method+" "+strings.TrimSuffix(route, "/*"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if d := cmp.Diff(routed, documented); d != "" {
		t.Errorf("routes.go (-) and openapi.json (+) differ:\n%s", d)
	}
}

// TestServesOpenAPI: GET /openapi.json answers the embedded document byte for byte.
func TestServesOpenAPI(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := NewServer(slog.New(slog.DiscardHandler), nil, admission(t, reg), reg, nil)
	rec := doRequest(h, "GET", "/openapi.json")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != string(OpenAPI) {
		t.Fatalf("GET /openapi.json = %d %q, %d bytes; want 200 application/json, the embedded document", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}

func doRequest(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// admission is an Admission of one slot, with its metrics on reg.
func admission(t *testing.T, reg prometheus.Registerer) *httpx.Admission {
	t.Helper()
	a, err := httpx.NewAdmission(httpx.AdmissionConfig{Limit: 1}, reg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
