package composetest

import (
	"bufio"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// listener is one listening TCP socket of this machine's network namespace.
type listener struct {
	ip    net.IP
	port  int
	inode string
}

func (l listener) String() string { return net.JoinHostPort(l.ip.String(), strconv.Itoa(l.port)) }

// procListeners reads the listening sockets from /proc/net/tcp and /proc/net/tcp6.
func procListeners(t *testing.T) []listener {
	t.Helper()
	var all []listener
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatalf("this test reads the listening sockets from %s: %v", file, err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			hostHex, portHex, _ := strings.Cut(fields[1], ":")
			raw, err := hex.DecodeString(hostHex)
			if err != nil || (len(raw) != 4 && len(raw) != 16) {
				t.Fatalf("%s: cannot parse address %q", file, fields[1])
			}
			// The kernel prints the address as 32-bit words in host byte order (little-endian here).
			ip := make(net.IP, len(raw))
			for i := 0; i < len(raw); i += 4 {
				ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			port, err := strconv.ParseInt(portHex, 16, 32)
			if err != nil {
				t.Fatalf("%s: cannot parse port %q", file, fields[1])
			}
			all = append(all, listener{ip: ip, port: int(port), inode: fields[9]})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// socketOwners maps socket inodes to the pids holding them open.
func socketOwners(t *testing.T) map[string][]int {
	t.Helper()
	owners := map[string][]int{}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue // gone, or not ours to read
		}
		inode := strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")
		pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
		if !slices.Contains(owners[inode], pid) {
			owners[inode] = append(owners[inode], pid)
		}
	}
	return owners
}

func portOf(t *testing.T, what, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s address %q: %v", what, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s address %q: %v", what, addr, err)
	}
	return port
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// The servers scripts/infra-up.sh starts are for this machine only: every port each of them
// listens on (not only the ones the tests use, but the broker's fast and HA ports too) must be on
// loopback. The servers are found by the ports the tests use (the addresses infra-up.sh writes to
// its env file, which scripts/test.sh sources); each process's other listening sockets are then
// checked too.
func TestLocalServersListenOnLoopbackOnly(t *testing.T) {
	const hint = "start the test servers with scripts/infra-up.sh (scripts/test.sh does it for you)"
	dsn, err := mysql.ParseDSN(getenv("TEST_MYSQL_DSN", "rmqtx:rmqtx@tcp(127.0.0.1:3306)/"))
	if err != nil {
		t.Fatalf("TEST_MYSQL_DSN: %v", err)
	}
	servers := []struct {
		name string
		port int
	}{
		{"MariaDB", portOf(t, "TEST_MYSQL_DSN", dsn.Addr)},
	}
	// Every NameServer and broker of a cluster (BROKERS=2 scripts/infra-up.sh) as well.
	for _, addr := range strings.Split(getenv("TEST_ROCKETMQ_NAMESRV", "127.0.0.1:9876"), ";") {
		servers = append(servers, struct {
			name string
			port int
		}{"NameServer " + addr, portOf(t, "TEST_ROCKETMQ_NAMESRV", addr)})
	}
	for _, addr := range strings.Split(getenv("TEST_ROCKETMQ_BROKERS", getenv("TEST_ROCKETMQ_BROKER", "127.0.0.1:10911")), ";") {
		servers = append(servers, struct {
			name string
			port int
		}{"Broker " + addr, portOf(t, "TEST_ROCKETMQ_BROKERS", addr)})
	}
	listeners := procListeners(t)
	owners := socketOwners(t)
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			var pids []int
			for _, l := range listeners {
				if l.port == srv.port {
					pids = append(pids, owners[l.inode]...)
				}
			}
			if len(pids) == 0 {
				t.Fatalf("no process of ours listens on port %d (the %s); %s", srv.port, srv.name, hint)
			}
			for _, pid := range pids {
				var ports []string
				for _, l := range listeners {
					if !slices.Contains(owners[l.inode], pid) {
						continue
					}
					ports = append(ports, l.String())
					if !l.ip.IsLoopback() {
						t.Errorf("the %s (pid %d) listens on %s: reachable from other machines; every listener of the local servers must be on 127.0.0.1 (a server started by an older scripts/infra-up.sh, or one it re-used, may not be: restart it with scripts/infra-down.sh and scripts/infra-up.sh)", srv.name, pid, l)
					}
				}
				t.Logf("pid %d listens on %v", pid, ports)
			}
		})
	}
}
