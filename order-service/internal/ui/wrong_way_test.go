package ui

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"rmqtx/order-service/internal/order"
)

// An instance in a wrong placement tells the page, which shows a banner; the right way has none.
func TestConfigNamesAWrongPlacement(t *testing.T) {
	t.Parallel()
	api := http.NotFoundHandler()
	for _, placement := range []string{order.PlacementTransactional, order.PlacementMemoryCheckBack} {
		srv := httptest.NewServer(With(api, slog.New(slog.DiscardHandler), Config{
			Faults: true, Timeline: true, Placement: placement, WrongWay: order.WrongWay(placement),
		}))
		defer srv.Close()
		_, body := request(t, "GET", srv.URL+"/ui/config", "")
		var c configJSON
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			t.Fatal(err)
		}
		wrong := placement != order.PlacementTransactional
		if c.Placement != placement || (c.WrongWay != "") != wrong {
			t.Errorf("PLACEMENT=%s: config placement %q, wrong_way %q", placement, c.Placement, c.WrongWay)
		}
	}
	srv := httptest.NewServer(With(api, slog.New(slog.DiscardHandler), Config{}))
	defer srv.Close()
	_, page := request(t, "GET", srv.URL+"/ui/", "")
	_, script := request(t, "GET", srv.URL+"/ui/app.js", "")
	if !strings.Contains(page, `id="wrong-way"`) || !strings.Contains(script, "c.wrong_way") || !strings.Contains(script, "brokenOutcome") {
		t.Error("the page has no wrong-way banner, or its script never fills it or names a broken outcome")
	}
}

// With PLACEMENT=outbox the page offers the outbox's fault points, none that needs a half message.
func TestConfigOffersTheOutboxFaultPoints(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(With(http.NotFoundHandler(), slog.New(slog.DiscardHandler), Config{
		Faults: true, Placement: order.PlacementOutbox, WrongWay: order.WrongWay(order.PlacementOutbox),
	}))
	defer srv.Close()
	_, body := request(t, "GET", srv.URL+"/ui/config", "")
	var c configJSON
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	offered := map[string]bool{}
	for _, p := range c.FaultPoints {
		offered[p.Header] = true
	}
	if !offered[order.FaultCrashAfterRelayPublish] || offered[order.FaultSkipEndTransaction] || offered[order.FaultCrashAfterHalf] {
		t.Errorf("PLACEMENT=outbox: the page offers %v", c.FaultPoints)
	}
	if c.WrongWay != "" {
		t.Errorf("PLACEMENT=outbox: wrong_way %q, want none", c.WrongWay)
	}
}
