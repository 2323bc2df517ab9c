package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"rmqtx/order-service/internal/order"
	"rmqtx/pkg/testenv"
)

// fakeCart stands in for cart-service: it answers every request with what it received.
type fakeCart struct {
	mu    sync.Mutex
	paths []string
}

func (f *fakeCart) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.paths = append(f.paths, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "path": r.URL.RequestURI(), "body": string(body)})
}

func (f *fakeCart) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...)
}

func newPage(t *testing.T, cartURL string, faults bool) *httptest.Server {
	t.Helper()
	var target *url.URL
	if cartURL != "" {
		var err error
		if target, err = url.Parse(cartURL); err != nil {
			t.Fatal(err)
		}
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "api")
		w.WriteHeader(http.StatusTeapot)
	})
	log := testenv.Logger(t)
	srv := httptest.NewServer(With(api, log, Config{CartURL: target, Faults: faults, Timeline: true}))
	t.Cleanup(srv.Close)
	return srv
}

func request(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// Do not follow redirects: the test looks at them.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestPageAndAPIShareOneAddress(t *testing.T) {
	t.Parallel()
	srv := newPage(t, "", true)
	tests := []struct {
		name, path     string
		wantStatus     int
		wantType       string // Content-Type prefix
		wantIn         string // in the body
		wantHeader     string // a header that must be set
		wantHeaderFrom string
	}{
		{name: "root redirects to the page", path: "/?user=u1", wantStatus: 302},
		{name: "the page", path: "/ui/", wantStatus: 200, wantType: "text/html", wantIn: `<script src="app.js" defer></script>`, wantHeader: "Content-Security-Policy"},
		{name: "its script", path: "/ui/app.js", wantStatus: 200, wantType: "text/javascript", wantIn: "function refreshWatched"},
		{name: "its style", path: "/ui/style.css", wantStatus: 200, wantType: "text/css", wantIn: ".steps"},
		{name: "no Go source", path: "/ui/ui.go", wantStatus: 404},
		{name: "the API", path: "/orders?user_id=u1", wantStatus: http.StatusTeapot, wantHeaderFrom: "api"},
		{name: "the API below root", path: "/healthz", wantStatus: http.StatusTeapot, wantHeaderFrom: "api"},
	}
	for _, tc := range tests {
		resp, body := request(t, "GET", srv.URL+tc.path, "")
		if resp.StatusCode != tc.wantStatus {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.wantStatus)
			continue
		}
		if tc.wantStatus == 302 && resp.Header.Get("Location") != "/ui/?user=u1" {
			t.Errorf("%s: Location %q, want /ui/?user=u1", tc.name, resp.Header.Get("Location"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
			t.Errorf("%s: Content-Type %q, want %s", tc.name, ct, tc.wantType)
		}
		if !strings.Contains(body, tc.wantIn) {
			t.Errorf("%s: body lacks %q", tc.name, tc.wantIn)
		}
		if tc.wantHeader != "" && resp.Header.Get(tc.wantHeader) == "" {
			t.Errorf("%s: no %s header", tc.name, tc.wantHeader)
		}
		if resp.Header.Get("X-From") != tc.wantHeaderFrom {
			t.Errorf("%s: answered by %q, want %q", tc.name, resp.Header.Get("X-From"), tc.wantHeaderFrom)
		}
	}
}

func TestConfigOffersOnlyValidFaults(t *testing.T) {
	t.Parallel()
	for _, faults := range []bool{true, false} {
		srv := newPage(t, "http://127.0.0.1:1", faults)
		resp, body := request(t, "GET", srv.URL+"/ui/config", "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var c configJSON
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			t.Fatal(err)
		}
		if c.FaultInjection != faults || !c.CartConnected || !c.Timeline || len(c.FaultPoints) == 0 {
			t.Errorf("faults=%v: config %+v", faults, c)
		}
		// Every point the page offers is one the service accepts.
		for _, f := range c.FaultPoints {
			if _, err := order.ParseFault(f.Header, true); err != nil || f.What == "" {
				t.Errorf("offered fault %q (%q) is not accepted: %v", f.Header, f.What, err)
			}
		}
	}
}

func TestCartProxy(t *testing.T) {
	t.Parallel()
	cart := &fakeCart{}
	cartSrv := httptest.NewServer(cart)
	t.Cleanup(cartSrv.Close)
	srv := newPage(t, cartSrv.URL, true)

	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantForwarded            string // what cart-service saw; "" for nothing
		wantCode                 string // error code when refused
	}{
		{"read a cart", "GET", "/ui/cart/carts/u1", "", 200, "GET /carts/u1", ""},
		{"set a line, with its body", "PUT", "/ui/cart/carts/u1/items/A-1", `{"quantity":3}`, 200, "PUT /carts/u1/items/A-1", ""},
		{"an order's cart timeline", "GET", "/ui/cart/orders/o-1/timeline", "", 200, "GET /orders/o-1/timeline", ""},
		{"not the metrics", "GET", "/ui/cart/metrics", "", 404, "", "not_found"},
		{"not an applied-order look-up", "GET", "/ui/cart/orders/o-1", "", 404, "", "not_found"},
		{"no way around the list", "GET", "/ui/cart/carts/%2e%2e/metrics", "", 0, "", ""},
	}
	for _, tc := range tests {
		before := len(cart.seen())
		resp, body := request(t, tc.method, srv.URL+tc.path, tc.body)
		seen := cart.seen()[before:]
		if tc.wantStatus != 0 && resp.StatusCode != tc.wantStatus {
			t.Errorf("%s: status %d, want %d; body %s", tc.name, resp.StatusCode, tc.wantStatus, body)
		}
		switch {
		case tc.wantForwarded == "" && len(seen) > 0:
			t.Errorf("%s: forwarded %v, want nothing", tc.name, seen)
		case tc.wantForwarded != "" && (len(seen) != 1 || seen[0] != tc.wantForwarded):
			t.Errorf("%s: forwarded %v, want %q", tc.name, seen, tc.wantForwarded)
		}
		if tc.body != "" && !strings.Contains(body, `"body":"{\"quantity\":3}"`) {
			t.Errorf("%s: body not passed on: %s", tc.name, body)
		}
		if tc.wantCode != "" && !strings.Contains(body, `"code":"`+tc.wantCode+`"`) {
			t.Errorf("%s: body %s, want error code %s", tc.name, body, tc.wantCode)
		}
	}
}

func TestCartProxyWhenCartIsMissing(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	tests := []struct {
		name, cartURL string
		wantStatus    int
		wantIn        string
	}{
		{"CART_URL unset", "", 503, "CART_URL"},
		{"cart-service down", goneURL, 502, "cart_unreachable"},
	}
	for _, tc := range tests {
		srv := newPage(t, tc.cartURL, true)
		resp, body := request(t, "GET", srv.URL+"/ui/cart/carts/u1", "")
		if resp.StatusCode != tc.wantStatus || !strings.Contains(body, tc.wantIn) {
			t.Errorf("%s: %d %s; want %d mentioning %q", tc.name, resp.StatusCode, body, tc.wantStatus, tc.wantIn)
		}
	}
}
