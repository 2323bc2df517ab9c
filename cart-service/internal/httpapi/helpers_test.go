package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/cart-service/internal/httpapi"
	"rmqtx/cart-service/internal/store"
	"rmqtx/pkg/httpx"
	"rmqtx/pkg/testenv"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	return store.New(testenv.OpenDB(t, testenv.NewDatabase(t, "carthttp"), store.Schema))
}

func newServer(t *testing.T, st *store.Store, ready map[string]httpx.Check) *httptest.Server {
	t.Helper()
	return newBoundedServer(t, st, ready, 16)
}

// newBoundedServer is a server that serves at most maxInFlight API requests at once; ready gets
// the bound's check as "admission".
func newBoundedServer(t *testing.T, st *store.Store, ready map[string]httpx.Check, maxInFlight int) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "cart_test_marker_total", Help: "marker"}))
	admit, err := httpx.NewAdmission(httpx.AdmissionConfig{Limit: maxInFlight}, reg)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]httpx.Check{"admission": admit.Ready}
	for name, c := range ready {
		checks[name] = c
	}
	srv := httptest.NewServer(httpapi.NewServer(testenv.Logger(t), st, admit, reg, checks))
	t.Cleanup(srv.Close)
	return srv
}

type errorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

type cartBody struct {
	UserID string `json:"user_id"`
	Items  []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"items"`
}

// asMap turns a cart answer into SKU → quantity.
func (c cartBody) asMap() map[string]int {
	m := map[string]int{}
	for _, it := range c.Items {
		m[it.SKU] = it.Quantity
	}
	return m
}

func do(t *testing.T, method, url, contentType, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	return resp.StatusCode, b
}

func storedCart(t *testing.T, st *store.Store, user string) map[string]int {
	t.Helper()
	items, err := st.Cart(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, it := range items {
		m[it.SKU] = it.Quantity
	}
	return m
}
