package e2e

// The cluster harness: two NameServers, two broker groups (broker-a, broker-b) in one cluster and a
// MariaDB of its own, all started by `BROKERS=2 scripts/infra-up.sh` in a folder and on ports of
// their own, so that killing any of them (MariaDB included) disturbs no other test.

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rmqtx/pkg/testenv"
)

const (
	clNamesrv1 = "29876"
	clNamesrv2 = "29877"
	clBrokerA  = "30911"
	clBrokerB  = "30921"
	clMySQL    = "23306"
)

func clusterDir() string { return filepath.Join(root, ".infra", "e2e-cluster") }

func clusterInfraEnv() []string {
	return append(os.Environ(),
		"INFRA_DIR="+clusterDir(),
		"JAR_CACHE="+filepath.Join(root, ".infra"),
		"BROKERS=2",
		"NAMESRV_PORT="+clNamesrv1, "NAMESRV2_PORT="+clNamesrv2,
		"BROKER_PORT="+clBrokerA, "BROKER2_PORT="+clBrokerB,
		"MYSQL_PORT="+clMySQL,
	)
}

// clusterUp starts (or restarts whatever of the cluster is not running: infra-up.sh re-uses live
// servers) and returns how long it took.
func clusterUp(t *testing.T) time.Duration {
	t.Helper()
	t0 := time.Now()
	cmd := exec.Command(filepath.Join(root, "scripts", "infra-up.sh"))
	cmd.Env = clusterInfraEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cluster infra-up: %v\n%s", err, out)
	}
	return time.Since(t0)
}

func clusterDown() {
	cmd := exec.Command(filepath.Join(root, "scripts", "infra-down.sh"), "--wipe")
	cmd.Env = clusterInfraEnv()
	cmd.CombinedOutput()
}

// clusterKill sends SIGKILL to one server of the cluster (its pid file, relative to the cluster's
// folder: broker/broker.pid is broker-a, namesrv/namesrv.pid the first NameServer,
// mariadb/mariadbd.pid MariaDB) and waits until it is gone.
func clusterKill(t *testing.T, pidfile string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(clusterDir(), pidfile))
	if err != nil {
		t.Fatalf("pid of %s: %v", pidfile, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (%d): %v", pidfile, pid, err)
	}
	testenv.Eventually(t, 30*time.Second, pidfile+" gone", func() bool { return syscall.Kill(pid, 0) != nil })
}

// clusterDatabase creates a database on the cluster's own MariaDB and returns its DSN.
func clusterDatabase(t *testing.T, name string) string {
	t.Helper()
	base := "rmqtx:rmqtx@tcp(127.0.0.1:" + clMySQL + ")/"
	db, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE IF NOT EXISTS " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return base + name
}

var (
	clientIDRe = regexp.MustCompile(`\S+@cart@\S+`)
)

// heldQueues reads the "#Consumer MQ Detail#" table of `mqadmin consumerStatus`: one row per queue
// the client holds, "topic broker-name queue-id ProcessQueueInfo [...]".
func heldQueues(out, topic string) []string {
	var qs []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "#Consumer MQ Detail#"):
			in = true
		case in && strings.HasPrefix(line, "#Consumer") && !strings.HasPrefix(line, "#Consumer MQ Detail#"):
			in = false
		case in && len(f) >= 3 && f[0] == topic:
			qs = append(qs, f[1]+":"+f[2])
		}
	}
	sort.Strings(qs)
	return slices.Compact(qs)
}

// mqadmin runs RocketMQ's own admin tool (from the jars infra-up.sh fetched) against the cluster.
func mqadmin(t *testing.T, args ...string) string {
	t.Helper()
	libs, _ := filepath.Glob(filepath.Join(root, ".infra", "rocketmq-*", "lib"))
	if len(libs) == 0 {
		t.Error("no RocketMQ jars under .infra")
		return ""
	}
	java := "java"
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		java = filepath.Join(jh, "bin", "java")
	} else if _, err := os.Stat("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"); err == nil {
		java = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
	}
	// A short-lived JVM: the quick compiler only, a small serial heap.
	cmd := exec.Command(java, append([]string{"-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", libs[0] + "/*",
		"-Drocketmq.namesrv.addr=127.0.0.1:" + clNamesrv1 + ";127.0.0.1:" + clNamesrv2,
		"org.apache.rocketmq.tools.command.MQAdminStartup"}, args...)...)
	cmd.Env = append(os.Environ(), "ROCKETMQ_HOME="+clusterDir())
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// queueDistribution asks each consumer of group (through the broker, as `mqadmin consumerStatus`
// does) which queues of topic it holds: client ID -> "broker-a:0" ...
func queueDistribution(t *testing.T, group, topic string) map[string][]string {
	t.Helper()
	ns := "127.0.0.1:" + clNamesrv1 + ";127.0.0.1:" + clNamesrv2
	ids := map[string]bool{}
	conn := mqadmin(t, "consumerConnection", "-g", group, "-n", ns)
	for _, id := range clientIDRe.FindAllString(conn, -1) {
		ids[id] = true
	}
	if len(ids) == 0 {
		t.Logf("mqadmin consumerConnection found no cart-service client:\n%s", conn)
	}
	out := map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id := range ids {
		wg.Add(1)
		go func() { // one JVM per client, side by side
			defer wg.Done()
			qs := heldQueues(mqadmin(t, "consumerStatus", "-g", group, "-i", id, "-n", ns), topic)
			// The instance name is cart@host@pid@uuid: keep the pid, which tells the two apart.
			parts := strings.Split(id, "@")
			name := id
			if len(parts) >= 4 {
				name = "pid " + parts[len(parts)-2]
			}
			mu.Lock()
			out[name] = qs
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func fmtDistribution(d map[string][]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d queues %v; ", k, len(d[k]), d[k])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func TestClusterHeldQueuesParsesConsumerStatus(t *testing.T) {
	out := "#Consumer Offset#\n" +
		"#Topic  #Broker Name  #QID  #Consumer Offset\n" +
		"tp      broker-b      3     0\n\n" +
		"#Consumer MQ Detail#\n" +
		"#Topic                #Broker Name   #QID  #ProcessQueueInfo\n" +
		"%RETRY%g              broker-b       0     ProcessQueueInfo [commitOffset=0]\n" +
		"tp                    broker-b       1     ProcessQueueInfo [commitOffset=0]\n" +
		"tp                    broker-a       0     ProcessQueueInfo [commitOffset=0]\n\n" +
		"#Consumer Pop Detail#\n" +
		"tp                    broker-a       2     x\n"
	if got, want := heldQueues(out, "tp"), []string{"broker-a:0", "broker-b:1"}; !slices.Equal(got, want) {
		t.Errorf("heldQueues = %v, want %v", got, want)
	}
}
