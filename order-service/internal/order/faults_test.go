package order

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseFault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header string
		want   Fault
	}{
		{"", Fault{}},
		{"skip-end-transaction", Fault{Point: FaultSkipEndTransaction}},
		{"resend-event", Fault{Point: FaultResendEvent}},
		{"slow-local-tx=8", Fault{Point: FaultSlowLocalTx, Slow: 8 * time.Second}},
		{"slow-local-tx=8,skip-end-transaction", Fault{Point: FaultSlowLocalTx, With: []string{FaultSkipEndTransaction}, Slow: 8 * time.Second}},
		{" slow-local-tx=8 , crash-after-local-commit ", Fault{Point: FaultSlowLocalTx, With: []string{FaultCrashAfterLocalCommit}, Slow: 8 * time.Second}},
		{"resend-event,cart-fail-once", Fault{Point: FaultResendEvent, With: []string{FaultCartFailOnce}}},
		{"crash-after-local-commit,cart-crash-after-commit", Fault{Point: FaultCrashAfterLocalCommit, With: []string{FaultCartCrashAfterCommit}}},
	}
	for _, tt := range tests {
		got, err := ParseFault(tt.header, true)
		if err != nil {
			t.Errorf("ParseFault(%q) = %v", tt.header, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ParseFault(%q) (-want +got):\n%s", tt.header, diff)
		}
	}
}

// Points that cannot strike together are refused with 422 (a ValidationError naming X-Fault) and
// a reason, never silently half-honoured.
func TestParseFaultRefusesBadCombinations(t *testing.T) {
	t.Parallel()
	for _, header := range []string{
		"crash-after-half,skip-end-transaction",         // the crash ends the attempt first
		"fail-local-tx,slow-local-tx=3",                 // nothing to hold open after the failure
		"crash-after-local-commit,skip-end-transaction", // same moment
		"crash-after-local-commit,resend-event",         // nothing resends after the crash
		"skip-end-transaction,skip-end-transaction",     // twice
		"cart-fail-once,cart-crash-after-commit",        // one cart point per order
		"slow-local-tx=8,explode",                       // unknown point
		"slow-local-tx=99,skip-end-transaction",         // out of range
		"skip-end-transaction,",                         // empty point
		"resend-event=2",                                // takes no argument
		"fail-local-tx,crash-after-relay-publish",       // the outbox row is rolled back: no relay publishes it
	} {
		_, err := ParseFault(header, true)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Fields["X-Fault"] == "" {
			t.Errorf("ParseFault(%q) = %v, want a ValidationError on X-Fault", header, err)
		}
	}
}

func TestFaultHasAndString(t *testing.T) {
	t.Parallel()
	f, err := ParseFault("slow-local-tx=8,skip-end-transaction,cart-fail-once", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{FaultSlowLocalTx, FaultSkipEndTransaction, FaultCartFailOnce} {
		if !f.Has(p) {
			t.Errorf("Has(%q) = false", p)
		}
	}
	if f.Has(FaultCrashAfterHalf) || f.Has("") {
		t.Error("Has reports a point that was not named")
	}
	if got := f.String(); got != "slow-local-tx=8,skip-end-transaction,cart-fail-once" {
		t.Errorf("String() = %q", got)
	}
	if got := f.cart(); got != FaultCartFailOnce {
		t.Errorf("cart() = %q", got)
	}
}
