package httpapi

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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

// bareServer is the API without a service behind it: enough to walk its routes.
func bareServer(t *testing.T) http.Handler {
	reg := prometheus.NewRegistry()
	return NewServer(slog.New(slog.DiscardHandler), nil, nil, admission(t, reg, 1), false, nil, reg)
}
