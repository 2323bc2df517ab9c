package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"

	"rmqtx/order-service/internal/order"
	"rmqtx/order-service/internal/order/ordertest"
	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/httpx"
	"rmqtx/pkg/testenv"
)

type fixture struct {
	h        http.Handler
	producer *ordertest.Producer
	store    *store.Store
}

func newFixture(t *testing.T, faults bool) *fixture {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st := store.New(testenv.OpenDB(t, testenv.NewDatabase(t, "orders"), store.Schema))
	reg := prometheus.NewRegistry()
	metrics, err := order.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var p *ordertest.Producer
	svc, err := order.NewService(st, metrics, log, order.Config{Topic: "t", Faults: faults,
		NewProducer: func(l primitive.TransactionListener) (order.Producer, error) {
			p = &ordertest.Producer{Listener: l}
			return p, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := NewServer(log, svc, svc, faults, map[string]httpx.Check{"mysql": st.Ping}, reg)
	return &fixture{h: h, producer: p, store: st}
}

func (f *fixture) do(method, path, body string, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

type errorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
		OrderID string            `json:"order_id"`
	} `json:"error"`
}

type orderBody struct {
	Order order.Order `json:"order"`
}

const good = `{"user_id":"u1","items":[{"sku":"A-1","quantity":2,"unit_price_cents":1999}]}`
