package e2e

// The suite's HTTP client checks every request it sends and every answer it gets against the
// OpenAPI document of the service it talks to, so that the documents cannot drift from the code.
// The documents are the repository's files (order-service/internal/httpapi/openapi.json and
// cart-service's), which each service embeds and serves at GET /openapi.json: a service that
// serves anything else is itself a mismatch. The validation is kin-openapi's openapi3filter.
//
// What counts as a mismatch:
//   - an answer whose status the operation does not list, or whose headers or body do not match
//     its schema;
//   - a request the document calls invalid (a body or parameter outside its schema) that the
//     service did not refuse with a 4xx: the tests send bad requests on purpose, and then the
//     document and the service must agree that they are bad;
//   - a route the document does not have, unless the service answered it 404 or 405 in the
//     error envelope.
//
// Mismatches do not stop the request (the chaos test counts answers, and an error would read as a
// killed process); they are collected, and the package fails at the end, listing each one.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// apiDocuments are the services' documents, by the name a mismatch report uses.
var apiDocuments = map[string]string{
	"order-service": "order-service/internal/httpapi/openapi.json",
	"cart-service":  "cart-service/internal/httpapi/openapi.json",
}

// apiCheck is the http.RoundTripper of the suite's client.
type apiCheck struct {
	next http.RoundTripper

	mu         sync.Mutex
	hosts      map[string]*apiHost // by host:port; a restarted process on the same port serves the same binary
	violations []string
}

// apiHost is what one service process serves: its document and a router over it.
type apiHost struct {
	service string
	doc     *openapi3.T
	router  routers.Router
}

var apiChecker = &apiCheck{next: http.DefaultTransport, hosts: map[string]*apiHost{}}

func (c *apiCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err // no answer: nothing to check
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))

	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), resp.StatusCode)
	if problem := c.check(req, reqBody, resp, respBody); problem != "" {
		c.mu.Lock()
		c.violations = append(c.violations, what+": "+problem+"\n    answer: "+truncate(string(respBody), 500))
		c.mu.Unlock()
	}
	return resp, nil
}

// check returns what does not match the document, or "".
func (c *apiCheck) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	host, err := c.host(req.URL.Host)
	if err != nil {
		return err.Error()
	}
	// A copy of the request as the service reads it, for the validator: the services parse every
	// body as JSON whatever its Content-Type (docs/design.md, REST contract; curl -d sends
	// form-urlencoded), and the harness does not always set one.
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	if len(reqBody) > 0 {
		vreq.Header.Set("Content-Type", "application/json")
	}

	route, pathParams, err := host.router.FindRoute(vreq)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			if problem := matchesError(host.doc, respBody); problem != "" {
				return fmt.Sprintf("%s: route not in the document, and the %d is not the error envelope: %s", host.service, resp.StatusCode, problem)
			}
			return ""
		}
		return fmt.Sprintf("%s: %v, yet the service answered %d", host.service, err, resp.StatusCode)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: pathParams, Route: route,
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && (resp.StatusCode < 400 || resp.StatusCode > 499) {
		return fmt.Sprintf("%s: the document says the request is invalid, yet the service answered %d: %s", host.service, resp.StatusCode, brief(err))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(respBody)), Options: in.Options,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Sprintf("%s: the answer does not match the document: %s", host.service, brief(err))
	}
	return ""
}

// host returns the document the service at addr serves, which must be one of the repository's.
func (c *apiCheck) host(addr string) (*apiHost, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.hosts[addr]; ok {
		return h, nil
	}
	resp, err := (&http.Client{Transport: c.next}).Get("http://" + addr + "/openapi.json")
	if err != nil {
		return nil, fmt.Errorf("GET /openapi.json: %v", err)
	}
	served, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET /openapi.json = %d, %v", resp.StatusCode, err)
	}
	for service, file := range apiDocuments {
		raw, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(raw, served) {
			continue
		}
		doc, err := openapi3.NewLoader().LoadFromData(raw)
		if err != nil {
			return nil, fmt.Errorf("load %s: %v", file, err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			return nil, fmt.Errorf("%s is not a valid document: %v", file, err)
		}
		doc.Servers = openapi3.Servers{{URL: "http://" + addr}} // the port the suite gave this process
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			return nil, fmt.Errorf("router over %s: %v", file, err)
		}
		h := &apiHost{service: service, doc: doc, router: router}
		c.hosts[addr] = h
		return h, nil
	}
	return nil, fmt.Errorf("GET /openapi.json at %s serves none of the repository's documents (%d bytes)", addr, len(served))
}

// matchesError checks body against the document's Error schema.
func matchesError(doc *openapi3.T, body []byte) string {
	schema := doc.Components.Schemas["Error"]
	if schema == nil {
		return "the document has no Error schema"
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "not JSON: " + err.Error()
	}
	if err := schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return err.Error()
	}
	return ""
}

// apiChecked is the package's exit code: code, or 1 when any request or answer did not match.
func apiChecked(code int) int {
	apiChecker.mu.Lock()
	defer apiChecker.mu.Unlock()
	if len(apiChecker.violations) == 0 {
		return code
	}
	sort.Strings(apiChecker.violations)
	fmt.Fprintf(os.Stderr, "FAIL: %d requests or answers do not match the services' OpenAPI documents:\n  %s\n",
		len(apiChecker.violations), strings.Join(apiChecker.violations, "\n  "))
	return 1
}

// brief is err's message without the schema and value kin-openapi prints after it (the report
// shows the answer itself).
func brief(err error) string {
	s := err.Error()
	if i := strings.Index(s, "\nSchema:"); i >= 0 {
		s = s[:i]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
