package order

// The local transaction (ExecuteLocalTransaction) and the check-back (CheckLocalTransaction) on a
// real database: the tx_log barrier makes them agree, whichever comes first, and a check-back
// that arrives while the local transaction is open waits for its outcome.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/go-sql-driver/mysql"

	"rmqtx/order-service/internal/store"
	"rmqtx/pkg/mysqldb"
	"rmqtx/pkg/testenv"
)

// openSQL opens the test database with database/sql, for statements the store has no method for.
func openSQL(t *testing.T, dsn string) (db *sql.DB, name string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db, err = sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, cfg.DBName
}

// lockWaits counts the transactions on database name that wait for a row lock. Poll it no faster
// than testenv.Eventually does: InnoDB refreshes INNODB_TRX only when it was last read over 100 ms
// ago, so faster polling keeps reading the same stale snapshot.
func lockWaits(t *testing.T, db *sql.DB, name string) int {
	t.Helper()
	var n int
	err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.INNODB_TRX t
		JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
		WHERE p.DB = ? AND t.trx_state = 'LOCK WAIT'`, name).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func outcomeOf(t *testing.T, st *store.Store, orderID string) store.Outcome {
	t.Helper()
	o, err := st.TxOutcome(context.Background(), orderID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return o
}

func TestLocalTxCommitWritesOrderAndBarrier(t *testing.T) {
	t.Parallel()
	svc, _, st, _ := testService(t, true)
	ctx := context.Background()
	placed, err := svc.Place(ctx, validRequest("u1"), "", Fault{})
	if err != nil {
		t.Fatal(err)
	}
	id := placed.Order.OrderID
	got, err := st.Order(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 2 || got.TotalCents != 2*1999+500 {
		t.Fatalf("order = %+v", got)
	}
	if o := outcomeOf(t, st, id); o != store.Committed {
		t.Fatalf("tx_log = %q, want committed", o)
	}
	// The check-back of a committed order answers commit and changes nothing.
	if s := svc.CheckLocalTransaction(checkMsg(id)); s != primitive.CommitMessageState {
		t.Fatalf("check-back = %v, want Commit", s)
	}
	assertStored(t, st, id, true)
}

func TestLocalTxFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	svc, fp, st, _ := testService(t, true)
	_, err := svc.Place(context.Background(), validRequest("u1"), "", Fault{Point: FaultFailLocalTx})
	if !errors.Is(err, ErrNotPlaced) {
		t.Fatalf("err = %v, want ErrNotPlaced", err)
	}
	id := fp.Sent()[0].GetKeys()
	// Neither the order nor its tx_log row: the barrier row rolled back with the order.
	assertStored(t, st, id, false)
	if o := outcomeOf(t, st, id); o != "" {
		t.Fatalf("tx_log = %q after a local rollback, want no row", o)
	}
	// The check-back then claims the ID as rolled back for good.
	if s := svc.CheckLocalTransaction(checkMsg(id)); s != primitive.RollbackMessageState {
		t.Fatalf("check-back = %v, want Rollback", s)
	}
	if o := outcomeOf(t, st, id); o != store.RolledBack {
		t.Fatalf("tx_log = %q after the check-back, want rolled_back", o)
	}
}

// The check-back comes before the local transaction has begun (it was slower than the broker's
// transaction timeout): the check-back claims the ID, and the late local transaction fails on the
// barrier instead of committing an order whose message was rolled back.
func TestCheckBackFirstMakesLateLocalTxFail(t *testing.T) {
	t.Parallel()
	svc, fp, st, _ := testService(t, true)
	var (
		id      string
		checked primitive.LocalTransactionState
	)
	fp.Before = func(_ context.Context, orderID string) {
		id, checked = orderID, svc.CheckLocalTransaction(checkMsg(orderID))
	}
	_, err := svc.Place(context.Background(), validRequest("u1"), "", Fault{})
	if checked != primitive.RollbackMessageState {
		t.Fatalf("early check-back = %v, want Rollback", checked)
	}
	if !errors.Is(err, ErrNotPlaced) || !mysqldb.IsDuplicateKey(err, store.KeyTxLog) {
		t.Fatalf("late local tx: err = %v, want ErrNotPlaced from a duplicate key on tx_log", err)
	}
	assertStored(t, st, id, false)
	if o := outcomeOf(t, st, id); o != store.RolledBack {
		t.Fatalf("tx_log = %q, want rolled_back", o)
	}
}

// A check-back that arrives while the local transaction holds its tx_log row must wait for it and
// then agree with it, whichever way it ends. The local transaction is held open by a row lock of
// the test's: an uncommitted order row with the same ID, which its INSERT has to wait for.
func TestCheckBackWaitsForInFlightLocalTx(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprintf("local tx commits=%v", commit), func(t *testing.T) {
			t.Parallel()
			svc, fp, st, dsn := testService(t, true)
			// Neither the local transaction nor the check-back may give up while the test looks
			// at them: on a machine busy enough to make looking slow, their usual bounds (5 s and
			// 10 s) would end the wait this test is about.
			svc.txBound, svc.checkBound = 2*time.Minute, 2*time.Minute
			db, dbName := openSQL(t, dsn)
			ctx := context.Background()

			type hold struct {
				id  string
				tx  *sql.Tx
				err error
			}
			held := make(chan hold, 1)
			fp.Before = func(_ context.Context, orderID string) {
				tx, err := db.BeginTx(ctx, nil)
				if err == nil {
					_, err = tx.Exec("INSERT INTO orders (order_id, user_id, total_cents, created_at) VALUES (?, 'blocker', 0, NOW(6))", orderID)
				}
				held <- hold{orderID, tx, err}
			}
			fault := Fault{}
			if !commit {
				fault = Fault{Point: FaultFailLocalTx}
			}
			type result struct {
				placed Placed
				err    error
			}
			placedc := make(chan result, 1)
			go func() {
				p, err := svc.Place(ctx, validRequest("u1"), "", fault)
				placedc <- result{p, err}
			}()
			h := <-held
			if h.err != nil {
				t.Fatalf("blocking row: %v", h.err)
			}
			released := false
			release := func() {
				if !released {
					released = true
					if err := h.tx.Rollback(); err != nil {
						t.Errorf("release the blocking row: %v", err)
					}
				}
			}
			t.Cleanup(release)

			// The local transaction has inserted its tx_log row and waits behind the test's row.
			testenv.Eventually(t, 30*time.Second, "the local transaction to wait for the test's row lock", func() bool {
				return lockWaits(t, db, dbName) == 1
			})
			checked := make(chan primitive.LocalTransactionState, 1)
			go func() { checked <- svc.CheckLocalTransaction(checkMsg(h.id)) }()
			// The check-back must wait for the local transaction's tx_log row, not answer now.
			testenv.Eventually(t, 30*time.Second, "the check-back to wait for the local transaction's tx_log row", func() bool {
				return lockWaits(t, db, dbName) == 2
			})
			select {
			case s := <-checked:
				t.Fatalf("check-back answered %v while the local transaction was open", s)
			default:
			}
			release()

			r := <-placedc
			got := <-checked
			want := primitive.RollbackMessageState
			if commit {
				want = primitive.CommitMessageState
				if r.err != nil || r.placed.Order.Status != StatusCreated {
					t.Fatalf("Place = %+v, %v; want created", r.placed, r.err)
				}
			} else if !errors.Is(r.err, ErrNotPlaced) {
				t.Fatalf("Place err = %v, want ErrNotPlaced", r.err)
			}
			if got != want {
				t.Fatalf("check-back = %v, want %v", got, want)
			}
			assertStored(t, st, h.id, commit)
			wantOutcome := store.RolledBack
			if commit {
				wantOutcome = store.Committed
			}
			if o := outcomeOf(t, st, h.id); o != wantOutcome {
				t.Fatalf("tx_log = %q, want %q", o, wantOutcome)
			}
		})
	}
}

// Local transactions racing their check-backs at random moments: every pair must agree with the
// final state (committed <=> the order exists <=> the check-back answered commit), and the test
// runs until both orderings have happened, the check-back first and the local transaction first.
func TestCheckBackRaceAlwaysAgrees(t *testing.T) {
	t.Parallel()
	svc, fp, st, _ := testService(t, true)
	type pair struct {
		id       string
		placeErr error
		check    primitive.LocalTransactionState
	}
	type slotKey struct{}
	var checks sync.WaitGroup
	fp.Before = func(ctx context.Context, orderID string) {
		p := ctx.Value(slotKey{}).(*pair)
		p.id = orderID
		checks.Add(1)
		go func() {
			defer checks.Done()
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // a random moment, not a wait
			p.check = svc.CheckLocalTransaction(checkMsg(orderID))
		}()
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
	}

	const n, maxRounds = 40, 10
	var committed, claimed int
	for round := 1; committed == 0 || claimed == 0; round++ {
		if round > maxRounds {
			t.Fatalf("after %d rounds of %d pairs: %d committed first, %d claimed by the check-back first; want both orderings",
				maxRounds, n, committed, claimed)
		}
		pairs := make([]pair, n)
		var places sync.WaitGroup
		for i := range pairs {
			places.Add(1)
			go func() {
				defer places.Done()
				_, pairs[i].placeErr = svc.Place(context.WithValue(context.Background(), slotKey{}, &pairs[i]), validRequest("u1"), "", Fault{})
			}()
		}
		places.Wait()
		checks.Wait()
		for _, p := range pairs {
			exists := p.placeErr == nil
			if p.placeErr != nil && !(errors.Is(p.placeErr, ErrNotPlaced) && mysqldb.IsDuplicateKey(p.placeErr, store.KeyTxLog)) {
				t.Fatalf("%s: local tx failed for another reason than losing the race: %v", p.id, p.placeErr)
			}
			assertStored(t, st, p.id, exists)
			want, wantOutcome := primitive.RollbackMessageState, store.RolledBack
			if exists {
				want, wantOutcome = primitive.CommitMessageState, store.Committed
				committed++
			} else {
				claimed++
			}
			if p.check != want {
				t.Fatalf("%s: check-back answered %v, but the order exists=%v", p.id, p.check, exists)
			}
			if o := outcomeOf(t, st, p.id); o != wantOutcome {
				t.Fatalf("%s: tx_log = %q, but the order exists=%v", p.id, o, exists)
			}
		}
		t.Logf("round %d: %d committed first, %d claimed by the check-back first (so far)", round, committed, claimed)
	}
}
