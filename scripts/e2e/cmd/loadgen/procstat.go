package main

// Resident memory and CPU of the services under load, from /proc.

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssWatcher samples VmRSS of some processes until stopped.
type rssWatcher struct {
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	peak map[string]int
	wg   sync.WaitGroup
}

func watchRSS(pids map[string]int, every time.Duration) *rssWatcher {
	w := &rssWatcher{done: make(chan struct{}), peak: map[string]int{}}
	if len(pids) == 0 {
		return w
	}
	w.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for name, pid := range pids {
				if kib, err := vmRSS(pid); err == nil {
					w.mu.Lock()
					w.peak[name] = max(w.peak[name], kib)
					w.mu.Unlock()
				}
			}
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	})
	return w
}

// stop ends the sampling and returns the peaks (nil if nothing was watched).
func (w *rssWatcher) stop() map[string]int {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.peak) == 0 {
		return nil
	}
	return maps.Clone(w.peak)
}

// vmRSS reads the resident set size, in KiB, from /proc/<pid>/status.
func vmRSS(pid int) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}

// cpuSnapshot is the CPU time used so far, in clock ticks, per watched process, by the machine
// (key "machine") and taken from it by the hypervisor (key "stolen"), and when it was read.
type cpuSnapshot struct {
	at    time.Time
	ticks map[string]int64
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux that matters here.
const clockTicks = 100

func takeCPU(pids map[string]int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), ticks: map[string]int64{}}
	for name, pid := range pids {
		if t, err := processTicks(pid); err == nil {
			s.ticks[name] = t
		}
	}
	if busy, steal, err := machineTicks(); err == nil {
		s.ticks["machine"] = busy
		s.ticks["stolen"] = steal
	}
	return s
}

// coresSince is the average number of cores each entry used between from and s.
func (s cpuSnapshot) coresSince(from cpuSnapshot) map[string]float64 {
	secs := s.at.Sub(from.at).Seconds()
	if from.ticks == nil || secs <= 0 {
		return nil
	}
	out := map[string]float64{}
	for name, t := range s.ticks {
		if t0, ok := from.ticks[name]; ok {
			out[name] = math.Round(float64(t-t0)/clockTicks/secs*100) / 100
		}
	}
	return out
}

// processTicks is utime + stime of a process (fields 14 and 15 of /proc/PID/stat, counted after
// the command name, which may contain spaces).
func processTicks(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed stat")
	}
	return u + st, nil
}

// machineTicks reads the first line of /proc/stat: busy is the CPU time the machine's own work
// used (everything but idle, iowait and steal; guest times are already in user), steal the time
// its virtual CPUs were ready to run and the hypervisor ran something else. Steal is not this
// machine's work, so it is not in busy; it is reported beside it, because a run during which a
// neighbour took a tenth of the cores is a run on a slower machine.
func machineTicks() (busy, steal int64, err error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	return parseMachineTicks(line)
}

// parseMachineTicks splits /proc/stat's "cpu" line into busy and steal (machineTicks).
func parseMachineTicks(line string) (busy, steal int64, err error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, errors.New("malformed /proc/stat")
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice]
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			steal = n
		default:
			busy += n
		}
	}
	return busy, steal, nil
}
