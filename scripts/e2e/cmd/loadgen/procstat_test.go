package main

import "testing"

func TestParseMachineTicks(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	busy, steal, err := parseMachineTicks("cpu  74529 3 24675 79680 1096 7 5518 3600 40 0")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(74529 + 3 + 24675 + 7 + 5518); busy != want {
		t.Errorf("busy = %d, want %d (user+nice+system+irq+softirq: not idle, iowait, steal or guest)", busy, want)
	}
	if steal != 3600 {
		t.Errorf("steal = %d, want 3600", steal)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3 4 5 6 7", "cpu 1 2 x 4 5 6 7 8"} {
		if _, _, err := parseMachineTicks(bad); err == nil {
			t.Errorf("parseMachineTicks(%q) accepted a malformed line", bad)
		}
	}
}
