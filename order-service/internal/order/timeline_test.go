package order

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"rmqtx/order-service/internal/timeline"
)

func stepNames(t *testing.T, svc *Service, orderID string) (string, []string) {
	t.Helper()
	tl, err := svc.Timeline(context.Background(), orderID)
	if err != nil {
		t.Fatalf("Timeline(%s): %v", orderID, err)
	}
	var names []string
	for _, s := range tl.Steps {
		if s.Instance != "test-instance" || s.At.IsZero() {
			t.Errorf("step %+v: want instance and time", s)
		}
		names = append(names, s.Step+" "+s.Detail[:min(len(s.Detail), 8)])
	}
	return tl.Outcome, names
}

func TestTimelineRecordsEachStep(t *testing.T) {
	t.Parallel()
	svc, fp, st, _ := testService(t, true)
	rec := timeline.NewRecorder(st, "test-instance", discard(), nil)
	svc.timeline = rec
	ctx := context.Background()

	ok, err := svc.Place(ctx, validRequest("u1"), "", Fault{})
	if err != nil {
		t.Fatal(err)
	}
	skipped, err := svc.Place(ctx, validRequest("u1"), "", Fault{Point: FaultSkipEndTransaction})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Place(ctx, validRequest("u1"), "", Fault{Point: FaultFailLocalTx}); !errors.Is(err, ErrNotPlaced) {
		t.Fatal(err)
	}
	failedID := fp.Sent()[2].GetKeys()
	svc.CheckLocalTransaction(checkMsg(skipped.Order.OrderID)) // the broker asks about the skipped one
	rec.Close()                                                // write what is queued

	tests := []struct {
		id          string
		wantOutcome string
		want        []string
	}{
		{ok.Order.OrderID, "committed", []string{"half_message_stored invisibl", "local_tx_committed tx_log '", "answer_sent commit: "}},
		{skipped.Order.OrderID, "committed", []string{"half_message_stored invisibl", "local_tx_committed tx_log '", "answer_withheld fault in", "check_back commit: "}},
		{failedID, "rolled_back", []string{"half_message_stored invisibl", "local_tx_rolled_back fault in", "answer_sent rollback"}},
	}
	for _, tt := range tests {
		outcome, got := stepNames(t, svc, tt.id)
		if outcome != tt.wantOutcome {
			t.Errorf("%s: outcome %q, want %q", tt.id, outcome, tt.wantOutcome)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: steps (-want +got):\n%s", tt.id, d)
		}
	}
	if _, err := svc.Timeline(ctx, "never-seen"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("timeline of an unknown order: %v, want ErrNotFound", err)
	}
}

// Steps are written after the fact, so an instance that dies right after its local commit
// (crash-after-local-commit) never writes them. tx_log still says the order committed, and the
// timeline says so too.
func TestTimelineFillsInACommitFromTxLog(t *testing.T) {
	t.Parallel()
	svc, _, _, _ := testService(t, true) // no recorder: nothing is written, as if the process had died
	placed, err := svc.Place(context.Background(), validRequest("u1"), "", Fault{})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := svc.Timeline(context.Background(), placed.Order.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Outcome != "committed" || len(tl.Steps) != 1 {
		t.Fatalf("timeline %+v; want committed with one step read from tx_log", tl)
	}
	s := tl.Steps[0]
	if s.Step != timeline.LocalCommitted || !strings.Contains(s.Detail, "tx_log") || !s.At.Equal(placed.Order.CreatedAt) {
		t.Errorf("step %+v; want local_tx_committed from tx_log at the order's creation %v", s, placed.Order.CreatedAt)
	}
}
