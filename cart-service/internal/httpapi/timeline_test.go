package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"rmqtx/cart-service/internal/store"
)

func TestTimelineEndpoint(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	srv := newServer(t, st, nil)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := st.RecordDeliveries(ctx, store.Delivery{OrderID: "o-1", Step: "retry_requested", Detail: "fault injection: cart-fail-once", MsgID: "m1", At: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "o-1", UserID: "u1", AppliedAt: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDeliveries(ctx, store.Delivery{OrderID: "o-1", Step: "applied", Detail: "done", ReconsumeTimes: 1, MsgID: "m1", At: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// o-3 was applied, then redelivered, but its applied step was never written (the process
	// died first): processed_orders fills it in, in time order.
	if err := st.InsertProcessedOrder(ctx, store.ProcessedOrder{OrderID: "o-3", UserID: "u1", AppliedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDeliveries(ctx, store.Delivery{OrderID: "o-3", Step: "duplicate_acknowledged", Detail: "dup", MsgID: "m3", At: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"retried, then applied", "/orders/o-1/timeline", 200,
			`{"order_id":"o-1","applied_at":"2026-03-01T12:00:01Z","steps":[` +
				`{"step":"retry_requested","detail":"fault injection: cart-fail-once","reconsume_times":0,"msg_id":"m1","at":"2026-03-01T12:00:00Z"},` +
				`{"step":"applied","detail":"done","reconsume_times":1,"msg_id":"m1","at":"2026-03-01T12:00:01Z"}]}`},
		{"applied step read from processed_orders", "/orders/o-3/timeline", 200,
			`{"order_id":"o-3","applied_at":"2026-03-01T12:00:00Z","steps":[` +
				`{"step":"applied","detail":"read from processed_orders: the step itself was not written (not yet, or the process died first)","reconsume_times":null,"msg_id":"","at":"2026-03-01T12:00:00Z"},` +
				`{"step":"duplicate_acknowledged","detail":"dup","reconsume_times":0,"msg_id":"m3","at":"2026-03-01T12:00:01Z"}]}`},
		// Not heard of (yet): the event may still be on its way, so this is no 404.
		{"unknown order", "/orders/o-2/timeline", 200, `{"order_id":"o-2","applied_at":null,"steps":[]}`},
		{"bad order ID", "/orders/o%201/timeline", 422, ""},
	}
	for _, tc := range tests {
		status, body := do(t, "GET", srv.URL+tc.path, "", "")
		if status != tc.wantStatus {
			t.Errorf("%s: status %d, want %d; body %s", tc.name, status, tc.wantStatus, body)
			continue
		}
		if tc.wantBody != "" && strings.TrimSpace(string(body)) != tc.wantBody {
			t.Errorf("%s: body\n%s\nwant\n%s", tc.name, body, tc.wantBody)
		}
	}
}
