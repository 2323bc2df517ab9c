package composetest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// runWrapper is the script docker-compose.yml puts in front of the RocketMQ image's start scripts.
var runWrapper = filepath.Join("scripts", "compose", "rocketmq-run.sh")

// The NameServer and the broker must stop on SIGTERM, not wait out the grace period and get
// SIGKILLed: a killed broker recovers its store as after a crash. The image's scripts do not exec
// java (see scripts/compose/rocketmq-run.sh), so each server runs behind the wrapper, with an init.
func TestRocketMQStopsCleanly(t *testing.T) {
	p := load(t)
	root, _ := filepath.Abs(repoRoot)
	for _, script := range []string{"mqnamesrv", "mqbroker"} {
		s := serviceRunning(t, p, script)
		t.Run(s.Name, func(t *testing.T) {
			args := append(slices.Clone(s.Entrypoint), s.Command...)
			if len(args) < 4 || args[0] != "bash" || args[2] != "sh" || args[3] != script {
				t.Fatalf("%s: command %q; want bash <wrapper> sh %s ...: the image's `sh %s` as PID 1 never passes SIGTERM to java", s.Name, args, script, script)
			}
			mounted := false
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeBind && v.Target == args[1] {
					mounted = v.Source == filepath.Join(root, runWrapper)
					if !v.ReadOnly {
						t.Errorf("%s: mount %s read-only (:ro)", s.Name, v.Target)
					}
				}
			}
			if !mounted {
				t.Errorf("%s: %s is not %s mounted from the repository", s.Name, args[1], runWrapper)
			}
			if s.Init == nil || !*s.Init {
				t.Errorf("%s: init is not true; docker-init reaps what the JVM leaves behind", s.Name)
			}
			// The broker's shutdown hook (store flush, thread joins, a fixed 3 s pause) takes about
			// ten seconds, as long as docker's default grace period.
			if script == "mqbroker" && (s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < 20*time.Second) {
				t.Errorf("%s: stop_grace_period %v; give the broker's shutdown hook at least 20s", s.Name, s.StopGracePeriod)
			}
		})
	}
}

// fakeImageScripts writes the shape of the image's start-up into dir: `sh mqbroker` runs
// `sh runbroker.sh`, which runs java, and neither execs (as RocketMQ's bin/mqbroker and the
// image's runbroker.sh). The "JVM" is a script named java whose SIGTERM handler, like the broker's
// shutdown hook, takes a moment and then records that it ran.
func fakeImageScripts(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"mqbroker": "sh \"$(dirname \"$0\")/runbroker.sh\" BrokerStartup \"$@\"\n",
		"runbroker.sh": "JAVA=\"$(dirname \"$0\")/java\"\n" +
			"$JAVA -server $@\n",
		"java": "#!/bin/bash\n" +
			"trap 'sleep 0.5; echo stopped >\"$0.stopped\"; exit 143' TERM\n" +
			"echo $$ >\"$0.pid.tmp\" && mv \"$0.pid.tmp\" \"$0.pid\"\n" +
			"while :; do sleep 0.1; done\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// jvmPid waits for the fake JVM to start and returns its pid.
func jvmPid(t *testing.T, dir string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "java.pid")); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake JVM did not start within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRocketMQWrapperPassesSIGTERMToTheJVM(t *testing.T) {
	wrapper, err := filepath.Abs(filepath.Join(repoRoot, runWrapper))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("without the wrapper the JVM never sees SIGTERM", func(t *testing.T) {
		// What `init: true` alone amounts to: the signal reaches the outer shell only. The shell
		// dies, and the JVM runs on without its shutdown hook (in a container it would then be
		// killed with everything else when the init exits).
		dir := fakeImageScripts(t)
		cmd := exec.Command("sh", "mqbroker", "-c", "broker.conf")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		jvm := jvmPid(t, dir)
		t.Cleanup(func() { syscall.Kill(jvm, syscall.SIGKILL) })
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if err := syscall.Kill(jvm, 0); err != nil {
			t.Fatalf("the JVM is gone after the shell got SIGTERM (%v); this test's stand-in for the image no longer shows the problem the wrapper solves", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "java.stopped")); err == nil {
			t.Fatal("the JVM ran its SIGTERM handler although only the shell was signalled")
		}
	})

	t.Run("with the wrapper the JVM stops cleanly and the wrapper returns its status", func(t *testing.T) {
		dir := fakeImageScripts(t)
		cmd := exec.Command("bash", wrapper, "sh", "mqbroker", "-c", "broker.conf")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		jvm := jvmPid(t, dir)
		t.Cleanup(func() { syscall.Kill(jvm, syscall.SIGKILL) })
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 143 {
			t.Errorf("wrapper ended with %v; want exit status 143, the JVM's after SIGTERM", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "java.stopped")); err != nil {
			t.Errorf("the JVM's SIGTERM handler did not run to its end before the wrapper exited: %v", err)
		}
		if err := syscall.Kill(jvm, 0); err == nil {
			t.Errorf("the JVM (pid %d) still runs after the wrapper exited", jvm)
		}
	})
}
