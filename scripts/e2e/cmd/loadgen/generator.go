package main

// The load itself: closed loop (a number of clients) or open loop (a rate), and what each
// order's answer was.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// generator places orders and keeps what was measured.
type generator struct {
	c      config
	client *http.Client
	users  []string
	next   atomic.Uint64 // round-robin over the order-service URLs

	mu        sync.Mutex
	requests  int
	latencies []time.Duration
	placed    []string // order IDs answered 201/202 in the measured window
	errs      map[string]int
	admission admission       // the same answers, refused for overload or not
	sendLags  []time.Duration // open loop: from when each order was due to when it was sent
}

// closedLoop keeps c.concurrency clients busy, each sending its next order when the last is
// answered.
func (g *generator) closedLoop(ctx context.Context) {
	start := time.Now()
	measureFrom, end := start.Add(g.c.warmup), start.Add(g.c.warmup+g.c.duration)
	var wg sync.WaitGroup
	for range g.c.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				at := time.Now()
				if !at.Before(end) {
					return
				}
				g.placeOne(ctx, at, !at.Before(measureFrom))
			}
		})
	}
	wg.Wait()
}

// openLoop starts one order every 1/rate seconds whether or not earlier ones were answered, so
// a slow server shows up as latency, not as a lower offered load. Latency counts from the moment
// the order was due. More than c.concurrency orders in flight is counted as "overload" and the
// order is not sent: the bound keeps a stalled server from piling up goroutines.
//
// The orders are sent by workers, started as needed up to c.concurrency and kept for the run: a
// goroutine per order would grow a fresh stack through net/http for each one, which at thousands
// of orders a second was a tenth of the generator's CPU, taken from the services it measures.
func (g *generator) openLoop(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / g.c.rate)
	start := time.Now()
	measureFrom, end := start.Add(g.c.warmup), start.Add(g.c.warmup+g.c.duration)
	type job struct {
		due      time.Time
		measured bool
	}
	jobs := make(chan job) // unbuffered: a send succeeds only if a worker is idle
	workers := 0
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		j := job{due: due, measured: !due.Before(measureFrom)}
		select {
		case jobs <- j:
			continue
		default:
		}
		if workers < g.c.concurrency {
			workers++
			wg.Go(func() {
				g.placeOne(ctx, j.due, j.measured)
				for j := range jobs {
					g.placeOne(ctx, j.due, j.measured)
				}
			})
			continue
		}
		if j.measured {
			g.mu.Lock()
			g.requests++
			g.errs["overload"]++
			g.mu.Unlock()
		}
	}
	close(jobs)
	wg.Wait()
}

// orderRequest is the body of POST /orders.
type orderRequest struct {
	UserID string      `json:"user_id"`
	Items  []orderLine `json:"items"`
}

type orderLine struct {
	SKU            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// placeOne sends one order for a random user: one or two of the user's SKUs, quantity 1.
func (g *generator) placeOne(ctx context.Context, due time.Time, measured bool) {
	user := g.users[mrand.IntN(len(g.users))]
	first := mrand.IntN(g.c.skus)
	order := orderRequest{UserID: user, Items: []orderLine{{SKU: sku(first), Quantity: 1, UnitPriceCents: 100}}}
	if mrand.IntN(2) == 1 {
		order.Items = append(order.Items, orderLine{SKU: sku((first + 1) % g.c.skus), Quantity: 1, UnitPriceCents: 250})
	}
	body, _ := json.Marshal(order)
	base := g.c.orders[g.next.Add(1)%uint64(len(g.c.orders))]

	lag := time.Since(due)
	orderID, kind, answered := g.post(ctx, base+"/orders", body)
	took := time.Since(due)
	if !measured {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests++
	if g.c.rate > 0 {
		g.sendLags = append(g.sendLags, lag)
	}
	if answered {
		g.latencies = append(g.latencies, took) // error answers count too: they are answers
		g.admission.add(kind, took, took-lag)
	}
	if kind == "" {
		g.placed = append(g.placed, orderID)
	} else {
		g.errs[kind]++
	}
}

// post sends one order and returns its ID, or the kind of error ("" when placed); answered is
// false when no HTTP answer came at all.
func (g *generator) post(ctx context.Context, url string, body []byte) (orderID, kind string, answered bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return "", transportKind(err), false
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", transportKind(err), false
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return "", errorKind(resp.StatusCode, raw), true
	}
	var out struct {
		Order struct {
			OrderID string `json:"order_id"`
		} `json:"order"`
	}
	if json.Unmarshal(raw, &out) != nil || out.Order.OrderID == "" {
		return "", "bad_answer", true
	}
	return out.Order.OrderID, "", true
}

func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	default:
		return "transport"
	}
}
