// Package composetest checks docker-compose.yml and the files it refers to, without a Docker
// engine: it loads the file with the Compose specification's own loader (the one docker compose
// uses) and verifies what a user would otherwise only discover when `docker compose up` fails or,
// worse, starts and misbehaves: health checks that gate start-up, settings the services read, a
// broker that advertises an address containers can reach, pinned images, buildable services.
// It also checks the local servers scripts/infra-up.sh starts, which stand in for compose in the
// tests: they must listen on loopback only (infra_test.go).
package composetest

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/go-sql-driver/mysql"
)

// repoRoot is the repository root, relative to this package.
const repoRoot = "../.."

// goService is what compose must give one of the project's Go services.
type goService struct {
	dir         string // the service's folder: its Dockerfile and ./cmd/<dir>
	database    string // the only database it may use
	dbUser      string // its MySQL user, created by the init script
	passwordVar string // the mysql service's variable holding that user's password
}

var goServices = map[string]goService{
	"order-service-1": {dir: "order-service", database: "orders", dbUser: "order_svc", passwordVar: "ORDER_DB_PASSWORD"},
	"order-service-2": {dir: "order-service", database: "orders", dbUser: "order_svc", passwordVar: "ORDER_DB_PASSWORD"},
	"cart-service":    {dir: "cart-service", database: "carts", dbUser: "cart_svc", passwordVar: "CART_DB_PASSWORD"},
}

// orderReplicas must be interchangeable instances of one order-service.
var orderReplicas = []string{"order-service-1", "order-service-2"}

// shutdownTimeout is the services' default SHUTDOWN_TIMEOUT (cmd/*/main.go).
const shutdownTimeout = 20 * time.Second

// load reads docker-compose.yml the way docker compose does, with every profile active, but with
// env as the only environment: the result must not depend on the machine running the test.
func load(t *testing.T, env ...string) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithName("rmqtx-composetest"),
		cli.WithWorkingDirectory(root),
		cli.WithEnv(env),
		cli.WithoutEnvironmentResolution,
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func env(t *testing.T, s types.ServiceConfig, name string) (string, bool) {
	t.Helper()
	v, ok := s.Environment[name]
	if !ok {
		return "", false
	}
	if v == nil {
		// `- NAME` without a value takes the host's variable: the suite would depend on whoever
		// runs it.
		t.Errorf("%s: environment %s has no value (it would be taken from the host)", s.Name, name)
		return "", false
	}
	return *v, true
}

// command is a service's command and entrypoint as one string, for finding what it runs.
func command(s types.ServiceConfig) string {
	return strings.Join(append(slices.Clone(s.Entrypoint), s.Command...), " ")
}

// serviceRunning finds the one service whose command contains what (mqnamesrv, mqbroker).
func serviceRunning(t *testing.T, p *types.Project, what string) types.ServiceConfig {
	t.Helper()
	var found []types.ServiceConfig
	for _, s := range p.Services {
		if strings.Contains(command(s), what) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one service running %s, found %d", what, len(found))
	}
	return found[0]
}

func serviceWithImage(t *testing.T, p *types.Project, repo string) types.ServiceConfig {
	t.Helper()
	for _, s := range p.Services {
		if r, _, _ := splitImage(s.Image); r == repo {
			return s
		}
	}
	t.Fatalf("no service runs image %s", repo)
	return types.ServiceConfig{}
}

// splitImage splits "repo[:tag][@digest]".
func splitImage(image string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// isOneShot reports whether a service runs to completion (an init step) instead of serving.
func isOneShot(s types.ServiceConfig) bool {
	return s.Restart == types.RestartPolicyNo
}

// builder returns the service that builds s's image: s itself when it has a build section, or
// another service that builds the image s names. nil means the image comes from a registry.
func builder(p *types.Project, s types.ServiceConfig) *types.ServiceConfig {
	if s.Build != nil {
		return &s
	}
	for _, other := range p.AllServices() {
		if other.Build != nil && s.Image != "" && other.Image == s.Image {
			return &other
		}
	}
	return nil
}

// readProperties reads a Java properties file of key=value lines.
func readProperties(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return props
}

// brokerConfig returns the host path of the broker's config file (the file after -c in its
// command, mounted from the repository) and its contents.
func brokerConfig(t *testing.T, p *types.Project) (string, map[string]string) {
	t.Helper()
	broker := serviceRunning(t, p, "mqbroker")
	args := append(slices.Clone(broker.Entrypoint), broker.Command...)
	i := slices.Index(args, "-c")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("%s: command %q has no -c <config file>", broker.Name, args)
	}
	target := args[i+1]
	for _, v := range broker.Volumes {
		if v.Target != target {
			continue
		}
		if v.Type != types.VolumeTypeBind {
			t.Fatalf("%s: %s is mounted from a %s, want the file from this repository", broker.Name, target, v.Type)
		}
		if !v.ReadOnly {
			t.Errorf("%s: mount the config file %s read-only (:ro)", broker.Name, target)
		}
		return v.Source, readProperties(t, v.Source)
	}
	t.Fatalf("%s: the config file %s is not mounted from the repository", broker.Name, target)
	return "", nil
}

func pomRocketMQVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "rocketmq", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var pom struct {
		Version string `xml:"properties>rocketmq.version"`
	}
	if err := xml.Unmarshal(data, &pom); err != nil {
		t.Fatalf("parse pom.xml: %v", err)
	}
	if pom.Version == "" {
		t.Fatal("pom.xml has no <rocketmq.version>")
	}
	return pom.Version
}

func TestServicesHaveHealthChecks(t *testing.T) {
	p := load(t)
	for _, s := range p.Services {
		t.Run(s.Name, func(t *testing.T) {
			if isOneShot(s) {
				return // runs to completion; dependants wait for it to succeed instead
			}
			if len(s.Profiles) > 0 {
				// Optional tools: acceptable without a check as long as nothing waits for them
				// (TestDependenciesWaitForHealth).
				return
			}
			hc := s.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
				t.Fatalf("%s has no health check: depends_on service_healthy on it can never pass, and `docker compose ps` cannot tell a stuck server from a working one", s.Name)
			}
			if hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL" {
				t.Errorf("%s: health check test %q should start with CMD or CMD-SHELL", s.Name, hc.Test)
			}
		})
	}
}

func TestDependenciesWaitForHealth(t *testing.T) {
	p := load(t)
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			t.Run(s.Name+"->"+dep, func(t *testing.T) {
				target, err := p.GetService(dep)
				if err != nil {
					t.Fatalf("%s depends on %s, which is not a service: %v", s.Name, dep, err)
				}
				if len(target.Profiles) > 0 && len(s.Profiles) == 0 {
					t.Errorf("%s depends on %s, which only runs under profile %v", s.Name, dep, target.Profiles)
				}
				want := types.ServiceConditionHealthy
				if isOneShot(target) {
					want = types.ServiceConditionCompletedSuccessfully
				}
				if d.Condition != want {
					t.Errorf("%s depends on %s with condition %q, want %q (started is not ready: the dependant would race its start-up)",
						s.Name, dep, d.Condition, want)
				}
			})
		}
	}
	for _, s := range p.Services {
		if !isOneShot(s) {
			continue
		}
		t.Run(s.Name+" is awaited", func(t *testing.T) {
			for _, other := range p.Services {
				if d, ok := other.DependsOn[s.Name]; ok && d.Condition == types.ServiceConditionCompletedSuccessfully {
					return
				}
			}
			t.Errorf("one-shot service %s is not awaited by anything with condition service_completed_successfully", s.Name)
		})
	}
}

func TestGoServicesGetTheirSettings(t *testing.T) {
	p := load(t)
	namesrv := serviceRunning(t, p, "mqnamesrv")
	broker := serviceRunning(t, p, "mqbroker")
	_, brokerConf := brokerConfig(t, p)
	mysqlSvc := serviceWithImage(t, p, "mysql")

	for name, want := range goServices {
		t.Run(name, func(t *testing.T) {
			s, err := p.GetService(name)
			if err != nil {
				t.Fatalf("service %s missing: %v", name, err)
			}
			for _, required := range []string{"HTTP_ADDR", "MYSQL_DSN", "ROCKETMQ_NAMESRV", "ROCKETMQ_BROKER_ADDR"} {
				if v, _ := env(t, s, required); v == "" {
					t.Errorf("%s: environment %s is not set", name, required)
				}
			}

			addr, _ := env(t, s, "HTTP_ADDR")
			host, port, err := net.SplitHostPort(addr)
			switch {
			case err != nil:
				t.Errorf("%s: HTTP_ADDR %q is not host:port", name, addr)
			case host != "" && host != "0.0.0.0":
				t.Errorf("%s: HTTP_ADDR %q listens on %s only; published ports and health checks from outside the process need all interfaces (\":%s\")", name, addr, host, port)
			}
			if s.HealthCheck != nil && !strings.Contains(strings.Join(s.HealthCheck.Test, " "), ":"+port+"/readyz") {
				t.Errorf("%s: health check %q does not probe /readyz on HTTP_ADDR's port %s", name, s.HealthCheck.Test, port)
			}
			published := false
			for _, pc := range s.Ports {
				published = published || fmt.Sprint(pc.Target) == port
			}
			if !published {
				t.Errorf("%s: no published port targets HTTP_ADDR's port %s", name, port)
			}

			if ns, _ := env(t, s, "ROCKETMQ_NAMESRV"); ns != namesrv.Name+":9876" {
				t.Errorf("%s: ROCKETMQ_NAMESRV = %q, want %q (the NameServer service)", name, ns, namesrv.Name+":9876")
			}
			if b, _ := env(t, s, "ROCKETMQ_BROKER_ADDR"); b != broker.Name+":"+brokerConf["listenPort"] {
				t.Errorf("%s: ROCKETMQ_BROKER_ADDR = %q, want %q (the broker service and its listenPort)", name, b, broker.Name+":"+brokerConf["listenPort"])
			}

			if v, ok := env(t, s, "LOG_LEVEL"); ok && !slices.Contains([]string{"debug", "info", "warn", "warning", "error"}, strings.ToLower(v)) {
				t.Errorf("%s: LOG_LEVEL = %q; the service accepts debug, info, warn or error", name, v)
			}
			if v, ok := env(t, s, "FAULT_INJECTION"); ok && !slices.Contains([]string{"on", "off"}, strings.ToLower(v)) {
				t.Errorf("%s: FAULT_INJECTION = %q; the service accepts on or off", name, v)
			}
			if v, ok := env(t, s, "TIMELINE"); ok && !slices.Contains([]string{"on", "off"}, strings.ToLower(v)) {
				t.Errorf("%s: TIMELINE = %q; the service accepts on or off", name, v)
			}

			dsn, _ := env(t, s, "MYSQL_DSN")
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatalf("%s: MYSQL_DSN does not parse: %v", name, err)
			}
			if cfg.DBName != want.database {
				t.Errorf("%s: MYSQL_DSN names database %q, want %q", name, cfg.DBName, want.database)
			}
			if cfg.Net != "tcp" || cfg.Addr != mysqlSvc.Name+":3306" {
				t.Errorf("%s: MYSQL_DSN connects to %s(%s), want tcp(%s:3306), the MySQL service", name, cfg.Net, cfg.Addr, mysqlSvc.Name)
			}
			if cfg.User != want.dbUser {
				t.Errorf("%s: MYSQL_DSN user %q, want %q (one user per service, limited to its database)", name, cfg.User, want.dbUser)
			}
			if pw, _ := env(t, mysqlSvc, want.passwordVar); cfg.Passwd != pw {
				t.Errorf("%s: MYSQL_DSN password differs from %s given to the %s service, which creates the user with it", name, want.passwordVar, mysqlSvc.Name)
			}
			for _, dep := range []string{mysqlSvc.Name, namesrv.Name, broker.Name} {
				if _, ok := s.DependsOn[dep]; !ok {
					t.Errorf("%s: does not depend on %s", name, dep)
				}
			}
		})
	}
}

// Variables given to `docker compose` reach the services, and the defaults are valid settings.
func TestSettingsFollowTheEnvironment(t *testing.T) {
	p := load(t, "LOG_LEVEL=debug", "FAULT_INJECTION=off", "ORDER_DB_PASSWORD=o-secret", "CART_DB_PASSWORD=c-secret")
	mysqlSvc := serviceWithImage(t, p, "mysql")
	for name, want := range goServices {
		t.Run(name, func(t *testing.T) {
			s, _ := p.GetService(name)
			if v, _ := env(t, s, "LOG_LEVEL"); v != "debug" {
				t.Errorf("LOG_LEVEL=debug in the environment gives %s LOG_LEVEL %q", name, v)
			}
			if v, _ := env(t, s, "FAULT_INJECTION"); v != "off" {
				t.Errorf("FAULT_INJECTION=off in the environment gives %s FAULT_INJECTION %q: production must be able to turn it off", name, v)
			}
			dsn, _ := env(t, s, "MYSQL_DSN")
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			if pw, _ := env(t, mysqlSvc, want.passwordVar); cfg.Passwd != pw || pw == "" {
				t.Errorf("%s: with %s set, MYSQL_DSN password %q and the mysql service's %q differ", name, want.passwordVar, cfg.Passwd, pw)
			}
		})
	}
}

func TestMySQLInitCreatesEachServiceUser(t *testing.T) {
	p := load(t)
	mysqlSvc := serviceWithImage(t, p, "mysql")
	var script string
	for _, v := range mysqlSvc.Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasPrefix(v.Target, "/docker-entrypoint-initdb.d/") {
			script = v.Source
		}
	}
	if script == "" {
		t.Fatalf("%s: no init script mounted under /docker-entrypoint-initdb.d/", mysqlSvc.Name)
	}
	data, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("init script: %v", err)
	}
	text := string(data)
	for _, want := range goServices {
		t.Run(want.dbUser, func(t *testing.T) {
			if !strings.Contains(text, "CREATE DATABASE IF NOT EXISTS "+want.database+";") {
				t.Errorf("%s does not create database %s", script, want.database)
			}
			if !strings.Contains(text, "'"+want.dbUser+"'@'%' IDENTIFIED BY") {
				t.Errorf("%s does not create user %s", script, want.dbUser)
			}
			if !strings.Contains(text, "ON "+want.database+".* TO '"+want.dbUser+"'@'%'") {
				t.Errorf("%s does not grant %s its database %s", script, want.dbUser, want.database)
			}
			if !strings.Contains(text, want.passwordVar) {
				t.Errorf("%s does not read the password from %s", script, want.passwordVar)
			}
			if pw, ok := env(t, mysqlSvc, want.passwordVar); !ok || pw == "" {
				t.Errorf("%s: %s is not set", mysqlSvc.Name, want.passwordVar)
			}
		})
	}
	t.Run("no global grants", func(t *testing.T) {
		if regexp.MustCompile(`(?i)ON\s+\*\.\*`).MatchString(text) {
			t.Errorf("%s grants privileges on *.*; each user may only use its own database", script)
		}
	})
	t.Run("health check over TCP", func(t *testing.T) {
		test := strings.Join(mysqlSvc.HealthCheck.Test, " ")
		if !strings.Contains(test, "mysqladmin ping") || !strings.Contains(test, "-h 127.0.0.1") {
			t.Errorf("%s: health check %q should be mysqladmin ping over TCP (-h 127.0.0.1): during first-start initialisation the image runs a temporary socket-only server that must not count as ready", mysqlSvc.Name, test)
		}
	})
}

func TestBrokerAdvertisesAContainerReachableAddress(t *testing.T) {
	p := load(t)
	path, conf := brokerConfig(t, p)
	broker := serviceRunning(t, p, "mqbroker")
	namesrv := serviceRunning(t, p, "mqnamesrv")
	t.Run("brokerIP1", func(t *testing.T) {
		ip := conf["brokerIP1"]
		if ip != broker.Name && (broker.Hostname == "" || ip != broker.Hostname) {
			t.Errorf("%s: brokerIP1=%q; want the broker's service name %q: clients dial what the broker advertises, and inside compose only the service name reaches it (127.0.0.1 is the client itself)", path, ip, broker.Name)
		}
	})
	t.Run("bindAddress", func(t *testing.T) {
		if b, ok := conf["bindAddress"]; ok && (b == "localhost" || net.ParseIP(b).IsLoopback()) {
			t.Errorf("%s: bindAddress=%s; inside a container the broker must listen on all interfaces", path, b)
		}
	})
	t.Run("namesrvAddr", func(t *testing.T) {
		if got := conf["namesrvAddr"]; got != namesrv.Name+":9876" {
			t.Errorf("%s: namesrvAddr=%q, want %q", path, got, namesrv.Name+":9876")
		}
	})
	t.Run("listenPort", func(t *testing.T) {
		if conf["listenPort"] == "" {
			t.Errorf("%s: set listenPort explicitly; the services' ROCKETMQ_BROKER_ADDR must match it", path)
		}
	})
	t.Run("fast check-backs", func(t *testing.T) {
		local := readProperties(t, filepath.Join(repoRoot, "scripts", "rocketmq", "broker.local.conf"))
		for _, k := range []string{"transactionTimeOut", "transactionCheckInterval", "transactionOpBatchInterval", "transactionCheckMax", "messageDelayLevel", "autoCreateTopicEnable"} {
			if conf[k] != local[k] {
				t.Errorf("%s: %s=%q differs from broker.local.conf (%q): compose and the tests should show the same timing", path, k, conf[k], local[k])
			}
		}
	})
	t.Run("store on a volume", func(t *testing.T) {
		store := conf["storePathRootDir"]
		if store == "" {
			store = "/home/rocketmq/store"
		}
		for _, v := range broker.Volumes {
			if v.Type == types.VolumeTypeVolume && (store == v.Target || strings.HasPrefix(store, v.Target+"/")) {
				return
			}
		}
		t.Errorf("%s: the store %s is not on a named volume; half messages would be lost when the container is re-created", broker.Name, store)
	})
	t.Run("small heaps", func(t *testing.T) {
		// The image's runserver.sh and runbroker.sh put HEAP_OPTS on the java command line in
		// place of their defaults, a fixed 1 GiB (NameServer) and 2 GiB plus 1 GiB of direct
		// memory (broker).
		for _, s := range []types.ServiceConfig{namesrv, broker} {
			opts, _ := env(t, s, "HEAP_OPTS")
			for _, flag := range []string{"-Xms", "-Xmx", "-Xmn"} {
				if !strings.Contains(opts, flag) {
					t.Errorf("%s: HEAP_OPTS %q lacks %s; the image's default heap is sized for a server, not a laptop", s.Name, opts, flag)
				}
			}
		}
		if opts, _ := env(t, broker, "HEAP_OPTS"); !strings.Contains(opts, "-XX:MaxDirectMemorySize=") {
			t.Errorf("%s: HEAP_OPTS %q lacks -XX:MaxDirectMemorySize; without it the JVM allows as much direct memory as heap, and the image's default is 1 GiB", broker.Name, opts)
		}
	})
}

func TestImagesArePinned(t *testing.T) {
	p := load(t)
	version := pomRocketMQVersion(t)
	for _, s := range p.AllServices() {
		if builder(p, s) != nil {
			continue // built from this repository
		}
		t.Run(s.Name, func(t *testing.T) {
			repo, tag, digest := splitImage(s.Image)
			if digest == "" && (tag == "" || tag == "latest") {
				t.Errorf("%s: image %q is not pinned to a version: every `up` could run something else", s.Name, s.Image)
			}
			if repo == "apache/rocketmq" && tag != version {
				t.Errorf("%s: image %s, but scripts/rocketmq/pom.xml runs RocketMQ %s locally; tests and compose must run the same broker", s.Name, s.Image, version)
			}
		})
	}
}

func TestGoServicesBuildFromThisRepository(t *testing.T) {
	p := load(t)
	root, _ := filepath.Abs(repoRoot)
	for name, want := range goServices {
		t.Run(name, func(t *testing.T) {
			s, err := p.GetService(name)
			if err != nil {
				t.Fatal(err)
			}
			if b := builder(p, s); b == nil {
				t.Fatalf("%s has no build section, and no other service builds its image %q", name, s.Image)
			} else {
				s = *b
			}
			if filepath.Clean(s.Build.Context) != root {
				t.Errorf("%s: build context %s, want the repository root (the service's go.mod replaces rmqtx/pkg with ../pkg)", name, s.Build.Context)
			}
			dockerfile := s.Build.Dockerfile
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(s.Build.Context, dockerfile)
			}
			if want := filepath.Join(root, want.dir, "Dockerfile"); dockerfile != want {
				t.Errorf("%s: builds %s, want %s", name, dockerfile, want)
			}
			data, err := os.ReadFile(dockerfile)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			text := string(data)
			if !strings.Contains(text, "./cmd/"+want.dir) {
				t.Errorf("%s: %s does not build ./cmd/%s", name, dockerfile, want.dir)
			}
			// Downloads and compiles reuse BuildKit's cache mounts across builds.
			for _, run := range regexp.MustCompile(`(?m)^RUN\s(?:.*\\\n)*.*$`).FindAllString(text, -1) {
				mounts := map[string]string{"go mod download": "/go/pkg/mod", "go build": "/root/.cache/go-build"}
				for cmd, cache := range mounts {
					if !strings.Contains(run, cmd) {
						continue
					}
					for _, target := range []string{"/go/pkg/mod", cache} {
						if !strings.Contains(run, "--mount=type=cache,target="+target) {
							t.Errorf("%s: %s runs %s without a cache mount on %s:\n%s", name, dockerfile, cmd, target, run)
						}
					}
				}
			}
			if _, err := os.Stat(filepath.Join(root, want.dir, "cmd", want.dir)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			// The last USER line decides who the runtime stage runs as.
			users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(text, -1)
			if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "root") || strings.HasPrefix(users[len(users)-1][1], "0") {
				t.Errorf("%s: %s does not end with a non-root USER", name, dockerfile)
			}
		})
	}
}

func TestOrderServiceReplicasAreOneGroup(t *testing.T) {
	p := load(t)
	first, err := p.GetService(orderReplicas[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range orderReplicas[1:] {
		t.Run(name, func(t *testing.T) {
			s, err := p.GetService(name)
			if err != nil {
				t.Fatal(err)
			}
			// Same producer group (and everything else): the broker may ask either about a half
			// message the other sent.
			for k, v := range first.Environment {
				w, ok := s.Environment[k]
				if !ok || (v == nil) != (w == nil) || (v != nil && *v != *w) {
					t.Errorf("environment %s differs between %s and %s", k, first.Name, name)
				}
			}
			if len(s.Environment) != len(first.Environment) {
				t.Errorf("%s and %s have different environments", first.Name, name)
			}
		})
	}
	t.Run("one topic", func(t *testing.T) {
		cart, err := p.GetService("cart-service")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := env(t, first, "ROCKETMQ_TOPIC")
		c, _ := env(t, cart, "ROCKETMQ_TOPIC")
		if o != c {
			t.Errorf("order-service publishes to topic %q but cart-service consumes %q", o, c)
		}
	})
}

// The web page each order-service serves reaches cart-service through it (CART_URL): the address
// must be the cart-service service on the port it listens on, as containers see it.
// The replicas are one service run twice: one image, built once. Two build sections would build
// and export the same image twice, and nothing would make the two copies equal.
func TestOrderServiceReplicasRunOneImage(t *testing.T) {
	p := load(t)
	var builders []string
	image := ""
	for _, name := range orderReplicas {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Build != nil {
			builders = append(builders, name)
		}
		if s.Image == "" {
			t.Errorf("%s names no image: compose would name the image after the service, one per replica", name)
		}
		if image == "" {
			image = s.Image
		} else if s.Image != image {
			t.Errorf("%s runs image %q, %s runs %q", name, s.Image, orderReplicas[0], image)
		}
		// The image exists only where it was built; a pull would ask a registry for a name that
		// anyone could have published there.
		if policy, _, _ := s.GetPullPolicy(); policy != types.PullPolicyNever {
			t.Errorf("%s: pull_policy %q; the image is built here and must never be pulled (never)", name, policy)
		}
	}
	if len(builders) != 1 {
		t.Errorf("%d replicas have a build section (%v); want exactly one, which the others share", len(builders), builders)
	}
	if repo, _, _ := splitImage(image); strings.Contains(repo, "/") {
		t.Errorf("image %q has a registry path; a local image should have a plain name", image)
	}
}

// On SELinux hosts (Fedora, RHEL) a container may not read a bind-mounted file until it is
// relabelled; :z does that, and is shared, as the same file may be mounted into several containers.
func TestBindMountsAreRelabelledForSELinux(t *testing.T) {
	p := load(t)
	for _, s := range p.AllServices() {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if v.Bind == nil || v.Bind.SELinux != "z" {
				t.Errorf("%s: bind mount %s -> %s lacks :z (SELinux hosts deny the container access)", s.Name, v.Source, v.Target)
			}
		}
	}
}

func TestOrderServicePageReachesCartService(t *testing.T) {
	p := load(t)
	cart, err := p.GetService("cart-service")
	if err != nil {
		t.Fatal(err)
	}
	cartAddr, _ := env(t, cart, "HTTP_ADDR")
	_, cartPort, err := net.SplitHostPort(cartAddr)
	if err != nil {
		t.Fatalf("cart-service: HTTP_ADDR %q is not host:port", cartAddr)
	}
	for _, name := range orderReplicas {
		t.Run(name, func(t *testing.T) {
			s, err := p.GetService(name)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := env(t, s, "CART_URL")
			if !ok {
				t.Fatalf("%s: CART_URL is not set; the web page could not show the cart", name)
			}
			u, err := url.Parse(v)
			if err != nil || u.Scheme != "http" || u.Path != "" {
				t.Fatalf("%s: CART_URL = %q, want http://<host>:<port> with no path", name, v)
			}
			if u.Hostname() != cart.Name || u.Port() != cartPort {
				t.Errorf("%s: CART_URL = %q, want http://%s:%s (the cart-service service and its HTTP_ADDR port; 127.0.0.1 would be the order-service container itself)",
					name, v, cart.Name, cartPort)
			}
		})
	}
}

func TestPublishedPortsDoNotClash(t *testing.T) {
	p := load(t)
	seen := map[string]string{}
	for _, s := range p.AllServices() {
		for _, pc := range s.Ports {
			if pc.Published == "" {
				continue
			}
			key := pc.HostIP + ":" + pc.Published + "/" + pc.Protocol
			t.Run(s.Name+" "+key, func(t *testing.T) {
				if other, ok := seen[key]; ok {
					t.Errorf("%s and %s both publish %s", other, s.Name, key)
				}
				seen[key] = s.Name
				if pc.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes %s on %q; bind to 127.0.0.1: fault injection is on by default", s.Name, pc.Published, pc.HostIP)
				}
			})
		}
	}
	for _, name := range orderReplicas {
		s, _ := p.GetService(name)
		if len(s.Ports) == 0 {
			t.Errorf("%s publishes no port: the demo cannot reach that replica", name)
		}
	}
}

func TestServicesRestartAndStopGracefully(t *testing.T) {
	p := load(t)
	for _, s := range p.Services {
		if isOneShot(s) {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			// Fault injection crashes processes on purpose; the suite must come back by itself.
			if !slices.Contains([]string{types.RestartPolicyUnlessStopped, types.RestartPolicyAlways, types.RestartPolicyOnFailure}, s.Restart) {
				t.Errorf("%s: restart %q; a crashed server would stay down", s.Name, s.Restart)
			}
			if _, ok := goServices[s.Name]; !ok {
				return
			}
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= shutdownTimeout {
				t.Errorf("%s: stop_grace_period must exceed the service's %s shutdown timeout, or `docker compose stop` kills in-flight orders", s.Name, shutdownTimeout)
			}
		})
	}
}

func TestDemoScriptIsExecutable(t *testing.T) {
	info, err := os.Stat(filepath.Join(repoRoot, "scripts", "demo.sh"))
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v", err)
	}
	if info.Mode().Perm()&0o111 == 0 {
		t.Errorf("scripts/demo.sh is not executable (mode %v)", info.Mode().Perm())
	}
}
