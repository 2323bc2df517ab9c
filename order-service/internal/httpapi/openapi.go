package httpapi

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the service's OpenAPI 3.1 document, served as is at GET /openapi.json. Tests hold the
// code to it: every route of routes.go is in it and nothing else (openapi_test.go), and the
// end-to-end suite validates every request it sends and every answer it gets against it.
//
//go:embed openapi.json
var OpenAPI []byte

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPI) // the client may be gone; nothing useful to do about it
	})
}
