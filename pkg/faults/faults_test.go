package faults

import "testing"

func TestIsCart(t *testing.T) {
	tests := map[string]bool{
		CartFailOnce:               true,
		CartCrashAfterCommit:       true,
		CartCrashBeforeApply:       true,
		"cart-something-else":      false, // cart-service would ignore it: not a cart point
		"crash-after-local-commit": false,
		"":                         false,
	}
	for point, want := range tests {
		if got := IsCart(point); got != want {
			t.Errorf("IsCart(%q) = %v, want %v", point, got, want)
		}
	}
}
