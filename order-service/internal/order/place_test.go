package order

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/events"
	"rmqtx/pkg/testenv"
)

// assertStored checks the invariant that matters: an order exists iff tx_log says committed.
func assertStored(t *testing.T, st *store.Store, orderID string, wantExists bool) {
	t.Helper()
	_, err := st.Order(context.Background(), orderID)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	outcome, err := st.TxOutcome(context.Background(), orderID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if exists != wantExists {
		t.Fatalf("order %s exists=%v, want %v", orderID, exists, wantExists)
	}
	if exists && outcome != store.Committed {
		t.Fatalf("order %s exists but tx_log=%q", orderID, outcome)
	}
	if !exists && outcome == store.Committed {
		t.Fatalf("order %s missing but tx_log=committed", orderID)
	}
}

func TestPlaceOverProducerOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		sendErr    error
		status     primitive.SendStatus
		fault      Fault
		wantErr    error
		wantStatus string
		wantAnswer primitive.LocalTransactionState // what ExecuteLocalTransaction told the broker
		wantStored bool
	}{
		{name: "commit", wantStatus: StatusCreated, wantAnswer: primitive.CommitMessageState, wantStored: true},
		{name: "half message refused", sendErr: errors.New("broker down"), wantErr: ErrBrokerUnavailable},
		{name: "half message not stored", status: primitive.SendFlushDiskTimeout, wantErr: ErrBrokerUnavailable},
		{name: "local tx fails: rollback", fault: Fault{Point: FaultFailLocalTx}, wantErr: ErrNotPlaced,
			wantAnswer: primitive.RollbackMessageState},
		{name: "answer skipped: unknown, still 201", fault: Fault{Point: FaultSkipEndTransaction},
			wantStatus: StatusCreated, wantAnswer: primitive.UnkonwnState, wantStored: true},
		{name: "slow local tx commits", fault: Fault{Point: FaultSlowLocalTx, Slow: 200 * time.Millisecond},
			wantStatus: StatusCreated, wantAnswer: primitive.CommitMessageState, wantStored: true},
		{name: "cart fault travels, order commits", fault: Fault{Point: FaultCartFailOnce},
			wantStatus: StatusCreated, wantAnswer: primitive.CommitMessageState, wantStored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc, fp, st, _ := testService(t, true)
			fp.SendErr = tt.sendErr
			if tt.status != 0 {
				fp.Status = tt.status
			}
			placed, err := svc.Place(context.Background(), validRequest("u1"), "", tt.fault)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			_, answers := fp.Counts()
			if tt.wantAnswer == 0 && len(answers) != 0 {
				t.Fatalf("local transaction ran (answers %v) though the half message failed", answers)
			}
			if tt.wantAnswer != 0 && (len(answers) != 1 || answers[0] != tt.wantAnswer) {
				t.Fatalf("answers to broker = %v, want [%v]", answers, tt.wantAnswer)
			}
			if err != nil {
				// Nothing written: the orders table has no row of any ID.
				rows, lerr := st.OrdersByUser(context.Background(), "u1", 10)
				if lerr != nil || len(rows) != 0 {
					t.Fatalf("after %v: orders = %v (%v), want none", err, rows, lerr)
				}
				return
			}
			if placed.Order.Status != tt.wantStatus {
				t.Fatalf("status = %q, want %q", placed.Order.Status, tt.wantStatus)
			}
			assertStored(t, st, placed.Order.OrderID, tt.wantStored)

			// The message is the event of this very order, keyed by its ID.
			msg := fp.Sent()[0]
			if msg.GetKeys() != placed.Order.OrderID || msg.GetTags() != events.TagOrderCreated {
				t.Fatalf("message keys=%q tags=%q", msg.GetKeys(), msg.GetTags())
			}
			ev, err := events.Decode(msg.Body)
			if err != nil {
				t.Fatal(err)
			}
			want := events.OrderCreated{
				Version: 1, OrderID: placed.Order.OrderID, UserID: "u1", TotalCents: 2*1999 + 500,
				CreatedAt: placed.Order.CreatedAt,
				Items:     []events.Item{{SKU: "A-1", Quantity: 2, UnitPriceCents: 1999}, {SKU: "B-2", Quantity: 1, UnitPriceCents: 500}},
			}
			if d := cmp.Diff(want, ev); d != "" {
				t.Fatalf("event (-want +got):\n%s", d)
			}
			if got := msg.GetProperty(events.PropertyFault); got != tt.fault.cart() {
				t.Fatalf("fault property = %q, want %q", got, tt.fault.cart())
			}
			got, err := svc.Get(context.Background(), placed.Order.OrderID)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(placed.Order, got); d != "" {
				t.Fatalf("GET differs from POST answer (-post +get):\n%s", d)
			}
		})
	}
}

// COMMIT fails with the connection gone: the outcome is unknown, the broker is told Unknown, the
// client gets "pending", and the check-back reads the truth (here: the server rolled back).
func TestPlaceAmbiguousCommitIsPending(t *testing.T) {
	t.Parallel()
	svc, fp, st, dsn := testService(t, true)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", testenv.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	// While the local transaction sleeps inside (slow-local-tx), kill its connection. It is inside
	// once it has written all its rows: tx_log, the order and its two items.
	killed := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var thread int64
			err := admin.QueryRow(`SELECT t.trx_mysql_thread_id FROM information_schema.INNODB_TRX t
				JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
				WHERE p.DB = ? AND t.trx_rows_modified >= 4`, cfg.DBName).Scan(&thread)
			switch {
			case err == nil:
				_, err = admin.Exec(fmt.Sprintf("KILL %d", thread))
				killed <- err
				return
			case !errors.Is(err, sql.ErrNoRows):
				killed <- err
				return
			case time.Now().After(deadline):
				killed <- errors.New("the local transaction was never seen holding its rows")
				return
			}
			// Not faster: InnoDB refreshes INNODB_TRX only when it was last read over 100 ms ago.
			time.Sleep(150 * time.Millisecond)
		}
	}()
	// The fault holds the transaction open this long whatever happens to its connection; the
	// connection is killed as soon as the transaction is seen inside it.
	placed, err := svc.Place(context.Background(), validRequest("u1"), "", Fault{Point: FaultSlowLocalTx, Slow: 3 * time.Second})
	if kerr := <-killed; kerr != nil {
		t.Fatal(kerr)
	}
	if err != nil {
		t.Fatalf("Place: %v, want a pending order", err)
	}
	if placed.Order.Status != StatusPending {
		t.Fatalf("status = %q, want pending", placed.Order.Status)
	}
	if _, answers := fp.Counts(); len(answers) != 1 || answers[0] != primitive.UnkonwnState {
		t.Fatalf("answers = %v, want [Unknown]", answers)
	}
	// The check-back decides from the database: the killed transaction never committed.
	msg := checkMsg(fp.Sent()[0].GetKeys())
	if got := svc.CheckLocalTransaction(msg); got != primitive.RollbackMessageState {
		t.Fatalf("check-back = %v, want Rollback", got)
	}
	if _, err := svc.Get(context.Background(), placed.Order.OrderID); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("GET after check-back: %v, want ErrRolledBack", err)
	}
	assertStored(t, st, placed.Order.OrderID, false)
}

func TestPlaceCrashPoints(t *testing.T) {
	tests := []struct {
		point      string
		wantStored bool
		wantCheck  primitive.LocalTransactionState
	}{
		{FaultCrashAfterHalf, false, primitive.RollbackMessageState},
		{FaultCrashAfterLocalCommit, true, primitive.CommitMessageState},
	}
	for _, tt := range tests {
		t.Run(tt.point, func(t *testing.T) {
			t.Parallel()
			svc, fp, st, _ := testService(t, true)
			var orderID string
			func() {
				defer func() {
					if r := recover(); r != errCrashed {
						t.Fatalf("recovered %v, want the crash", r)
					}
				}()
				svc.Place(context.Background(), validRequest("u1"), "", Fault{Point: tt.point})
			}()
			orderID = fp.Sent()[0].GetKeys()
			assertStored(t, st, orderID, tt.wantStored)
			// After the crash, the broker checks back (here: this same service, as a restarted or
			// another instance would, with nothing in memory).
			msg := checkMsg(fp.Sent()[0].GetKeys())
			if got := svc.CheckLocalTransaction(msg); got != tt.wantCheck {
				t.Fatalf("check-back = %v, want %v", got, tt.wantCheck)
			}
			assertStored(t, st, orderID, tt.wantStored)
		})
	}
}

func TestFaultsIgnoredWhenOff(t *testing.T) {
	t.Parallel()
	svc, fp, st, _ := testService(t, false)
	// Even if a Fault reached Place with injection off, it must do nothing.
	placed, err := svc.Place(context.Background(), validRequest("u1"), "", Fault{Point: FaultFailLocalTx})
	if err != nil {
		t.Fatal(err)
	}
	assertStored(t, st, placed.Order.OrderID, true)
	if _, answers := fp.Counts(); answers[0] != primitive.CommitMessageState {
		t.Fatalf("answer = %v", answers[0])
	}
	if _, err := ParseFault("fail-local-tx", false); err == nil {
		t.Fatal("ParseFault accepted a fault with injection off")
	}
}

func TestCheckBackAnswers(t *testing.T) {
	t.Parallel()
	svc, _, _, _ := testService(t, true)
	placed, err := svc.Place(context.Background(), validRequest("u1"), "", Fault{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  string
		want primitive.LocalTransactionState
	}{
		{"committed order", placed.Order.OrderID, primitive.CommitMessageState},
		{"never seen", "unknown-order", primitive.RollbackMessageState},
		{"never seen, asked again", "unknown-order", primitive.RollbackMessageState},
		{"no key", "", primitive.RollbackMessageState},
	}
	for _, tt := range tests {
		if got := svc.CheckLocalTransaction(checkMsg(tt.key)); got != tt.want {
			t.Errorf("%s: check-back = %v, want %v", tt.name, got, tt.want)
		}
	}

	// A panic must not escape (it would stop all later check-backs): answer Unknown.
	broken := &Service{log: discard(), metrics: svc.metrics, now: time.Now}
	if got := broken.CheckLocalTransaction(checkMsg("x")); got != primitive.UnkonwnState {
		t.Fatalf("check-back with a broken store = %v, want Unknown", got)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	svc, fp, _, _ := testService(t, true)
	ctx := context.Background()
	first, err := svc.Place(ctx, validRequest("u1"), "key-1", Fault{})
	if err != nil {
		t.Fatal(err)
	}
	// Same key, same body (items in another order): the same order, no second message.
	req := validRequest("u1")
	req.Items[0], req.Items[1] = req.Items[1], req.Items[0]
	again, err := svc.Place(ctx, req, "key-1", Fault{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.Order.OrderID != first.Order.OrderID {
		t.Fatalf("replay = %+v, want order %s replayed", again, first.Order.OrderID)
	}
	if sent, _ := fp.Counts(); sent != 1 {
		t.Fatalf("half messages sent = %d, want 1", sent)
	}
	// Same key, different body: conflict, nothing sent.
	other := validRequest("u1")
	other.Items[0].Quantity = 5
	if _, err := svc.Place(ctx, other, "key-1", Fault{}); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("err = %v, want ErrIdempotencyConflict", err)
	}
	// The same key of another user is another key.
	if p, err := svc.Place(ctx, validRequest("u2"), "key-1", Fault{}); err != nil || p.Replayed {
		t.Fatalf("other user: %+v, %v", p, err)
	}
}

// Concurrent first uses of one key: both get past the lookup and send a half message; the
// unique key lets exactly one commit, and both callers get that order.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	t.Parallel()
	svc, fp, st, _ := testService(t, true)
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := svc.Place(context.Background(), validRequest("u1"), "same-key", Fault{})
			ids[i], errs[i] = p.Order.OrderID, err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("caller %d: id=%s err=%v; want all %s", i, ids[i], errs[i], ids[0])
		}
	}
	rows, err := st.OrdersByUser(context.Background(), "u1", 100)
	if err != nil || len(rows) != 1 {
		t.Fatalf("orders = %d (%v), want 1", len(rows), err)
	}
	_, answers := fp.Counts()
	commits := 0
	for _, a := range answers {
		if a == primitive.CommitMessageState {
			commits++
		}
	}
	if commits != 1 {
		t.Fatalf("commits = %d of %d half messages, want exactly 1", commits, len(answers))
	}
}

// IDs are case-sensitive end to end: validation, the database and the cart agree that "a" and
// "A" are two SKUs, and two keys differing in case are two keys.
func TestIDsAreCaseSensitive(t *testing.T) {
	t.Parallel()
	svc, _, _, _ := testService(t, false)
	req := Request{UserID: "u1", Items: []RequestItem{{SKU: "a", Quantity: 1}, {SKU: "A", Quantity: 2}}}
	placed, err := svc.Place(context.Background(), req, "key", Fault{})
	if err != nil {
		t.Fatalf("order with SKUs a and A: %v", err)
	}
	if len(placed.Order.Items) != 2 {
		t.Fatalf("items = %+v", placed.Order.Items)
	}
	other, err := svc.Place(context.Background(), validRequest("u1"), "KEY", Fault{})
	if err != nil || other.Replayed {
		t.Fatalf("key KEY after key: %+v, %v; want a new order", other, err)
	}
}
