package httpapi

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/pkg/httpx"
	"rmqtx/pkg/openapitest"
)

// TestOpenAPIListsEveryRoute: openapi.json is a valid OpenAPI 3.1 document, and its operations are
// exactly the routes of routes.go.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	openapitest.ListsEveryRoute(t, OpenAPI, bareServer(t))
}

// TestServesOpenAPI: GET /openapi.json answers the embedded document byte for byte.
func TestServesOpenAPI(t *testing.T) {
	t.Parallel()
	openapitest.Served(t, OpenAPI, bareServer(t))
}

// bareServer is the API without a store behind it: enough to walk its routes.
func bareServer(t *testing.T) http.Handler {
	reg := prometheus.NewRegistry()
	admit, err := httpx.NewAdmission(httpx.AdmissionConfig{Limit: 1}, reg)
	if err != nil {
		t.Fatal(err)
	}
	return NewServer(slog.New(slog.DiscardHandler), nil, admit, reg, nil)
}
