package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

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
	db       *gorm.DB // the same database, for counting rows
}

func newFixture(t *testing.T, faults bool) *fixture {
	t.Helper()
	return newBoundedFixture(t, faults, 32)
}

// newBoundedFixture is a fixture that places at most maxInFlight orders at once.
func newBoundedFixture(t *testing.T, faults bool, maxInFlight int) *fixture {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	db := testenv.OpenDB(t, testenv.NewDatabase(t, "orders"), store.Schema)
	st := store.New(db)
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
	admit := admission(t, reg, maxInFlight)
	h := NewServer(log, svc, svc, admit, faults, map[string]httpx.Check{"mysql": st.Ping, "admission": admit.Ready}, reg)
	return &fixture{h: h, producer: p, store: st, db: db}
}

// admission bounds the orders in flight to limit, with its metrics on reg.
func admission(t *testing.T, reg prometheus.Registerer, limit int) *httpx.Admission {
	t.Helper()
	a, err := httpx.NewAdmission(httpx.AdmissionConfig{Limit: limit}, reg)
	if err != nil {
		t.Fatal(err)
	}
	return a
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
