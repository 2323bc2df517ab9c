// Package openapitest holds a service's OpenAPI document to its router, for the unit tests of both
// services' httpapi packages. (That every answer matches the document is for the end-to-end suite,
// which validates each request and answer against it.)
package openapitest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
)

// ListsEveryRoute fails t unless doc is a valid OpenAPI 3.1 document whose operations are exactly
// the routes of h, a chi router: no route missing from the document, none documented that is not
// routed.
func ListsEveryRoute(t *testing.T, doc []byte, h http.Handler) {
	t.Helper()
	d, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if d.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", d.OpenAPI)
	}
	if err := d.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid document: %v", err)
	}
	var documented []string
	for path, item := range d.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("the handler is a %T, not a chi router", h)
	}
	var routed []string
	err = chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed = append(routed, method+" "+strings.TrimSuffix(route, "/*"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if diff := cmp.Diff(routed, documented); diff != "" {
		t.Errorf("routes.go (-) and openapi.json (+) differ:\n%s", diff)
	}
}

// Served fails t unless GET /openapi.json on h answers doc byte for byte, as application/json.
func Served(t *testing.T, doc []byte, h http.Handler) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != string(doc) {
		t.Fatalf("GET /openapi.json = %d %q, %d bytes; want 200 application/json, the embedded document",
			rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}
