package composetest

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// The cluster override, docker-compose.cluster.yml, loaded on top of docker-compose.yml as
// `docker compose -f docker-compose.yml -f docker-compose.cluster.yml up` does.

func loadCluster(t *testing.T, env ...string) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml"), filepath.Join(root, "docker-compose.cluster.yml")},
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
		t.Fatalf("load docker-compose.yml + docker-compose.cluster.yml: %v", err)
	}
	return p
}

// servicesRunning finds every service whose command contains what.
func servicesRunning(p *types.Project, what string) []types.ServiceConfig {
	var found []types.ServiceConfig
	for _, s := range p.Services {
		if strings.Contains(command(s), what) {
			found = append(found, s)
		}
	}
	slices.SortFunc(found, func(a, b types.ServiceConfig) int { return strings.Compare(a.Name, b.Name) })
	return found
}

// configOf is the broker config file a broker service mounts, read from the repository.
func configOf(t *testing.T, s types.ServiceConfig) (string, map[string]string) {
	t.Helper()
	args := append(slices.Clone(s.Entrypoint), s.Command...)
	i := slices.Index(args, "-c")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("%s: command %q has no -c <config file>", s.Name, args)
	}
	for _, v := range s.Volumes {
		if v.Target == args[i+1] && v.Type == types.VolumeTypeBind {
			if !v.ReadOnly {
				t.Errorf("%s: mount the config file %s read-only (:ro)", s.Name, v.Target)
			}
			return v.Source, readProperties(t, v.Source)
		}
	}
	t.Fatalf("%s: the config file %s is not mounted from the repository", s.Name, args[i+1])
	return "", nil
}

func TestClusterTopology(t *testing.T) {
	p := loadCluster(t)
	namesrvs := servicesRunning(p, "mqnamesrv")
	brokers := servicesRunning(p, "mqbroker")
	if len(namesrvs) != 2 || len(brokers) != 2 {
		t.Fatalf("want two NameServers and two brokers, got %d and %d", len(namesrvs), len(brokers))
	}
	var nsAddrs []string
	for _, ns := range namesrvs {
		nsAddrs = append(nsAddrs, ns.Name+":9876")
	}
	local := readProperties(t, filepath.Join(repoRoot, "scripts", "rocketmq", "broker.local.conf"))
	names, clusters, stores := map[string]bool{}, map[string]bool{}, map[string]string{}
	var brokerAddrs []string
	for _, b := range brokers {
		path, conf := configOf(t, b)
		names[conf["brokerName"]] = true
		clusters[conf["brokerClusterName"]] = true
		if conf["brokerIP1"] != b.Name {
			t.Errorf("%s: brokerIP1=%q, want its service name %q", path, conf["brokerIP1"], b.Name)
		}
		if conf["listenPort"] == "" {
			t.Errorf("%s: set listenPort explicitly", path)
		}
		brokerAddrs = append(brokerAddrs, b.Name+":"+conf["listenPort"])
		if got := strings.Split(conf["namesrvAddr"], ";"); !slices.Equal(got, nsAddrs) {
			t.Errorf("%s: namesrvAddr=%q; every broker must register with every NameServer %v", path, conf["namesrvAddr"], nsAddrs)
		}
		for _, k := range []string{"transactionTimeOut", "transactionCheckInterval", "transactionOpBatchInterval", "transactionCheckMax", "messageDelayLevel", "autoCreateTopicEnable"} {
			if conf[k] != local[k] {
				t.Errorf("%s: %s=%q differs from broker.local.conf (%q)", path, k, conf[k], local[k])
			}
		}
		store := conf["storePathRootDir"]
		for _, v := range b.Volumes {
			if v.Type == types.VolumeTypeVolume && (store == v.Target || strings.HasPrefix(store, v.Target+"/")) {
				if other, ok := stores[v.Source]; ok {
					t.Errorf("%s and %s share the store volume %s", other, b.Name, v.Source)
				}
				stores[v.Source] = b.Name
			}
		}
		if len(stores) == 0 || !slices.Contains(mapsValues(stores), b.Name) {
			t.Errorf("%s: the store %s is not on a named volume", b.Name, store)
		}
		if opts, _ := env(t, b, "HEAP_OPTS"); !strings.Contains(opts, "-Xmx") || !strings.Contains(opts, "-XX:MaxDirectMemorySize=") {
			t.Errorf("%s: HEAP_OPTS %q: set the heap and direct memory", b.Name, opts)
		}
	}
	if len(names) != 2 {
		t.Errorf("the brokers must be two broker groups (distinct brokerName), got %v", names)
	}
	if len(clusters) != 1 {
		t.Errorf("the brokers must be one cluster (same brokerClusterName), got %v", clusters)
	}

	carts := 0
	for _, s := range p.Services {
		dir := ""
		if g, ok := goServices[s.Name]; ok {
			dir = g.dir
		} else if strings.HasPrefix(s.Name, "cart-service") {
			dir = "cart-service"
		} else {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			if ns, _ := env(t, s, "ROCKETMQ_NAMESRV"); !slices.Equal(strings.Split(ns, ";"), nsAddrs) {
				t.Errorf("ROCKETMQ_NAMESRV=%q, want every NameServer %v", ns, nsAddrs)
			}
			if b, _ := env(t, s, "ROCKETMQ_BROKER_ADDR"); !slices.Equal(strings.Split(b, ";"), brokerAddrs) {
				t.Errorf("ROCKETMQ_BROKER_ADDR=%q, want every broker group's master %v: the topic must exist on each", b, brokerAddrs)
			}
			for _, dep := range append(slices.Clone(namesrvs), brokers...) {
				if d, ok := s.DependsOn[dep.Name]; !ok || d.Condition != types.ServiceConditionHealthy {
					t.Errorf("does not wait for %s to be healthy", dep.Name)
				}
			}
		})
		if dir == "cart-service" {
			carts++
			if g, _ := env(t, s, "ROCKETMQ_GROUP"); g != "" {
				t.Errorf("%s: ROCKETMQ_GROUP=%q; the cart-services must share the default group", s.Name, g)
			}
			if b := builder(p, s); b == nil {
				t.Errorf("%s: no service builds its image %q", s.Name, s.Image)
			}
		}
	}
	if carts != 2 {
		t.Errorf("want two cart-service instances in one consumer group, got %d", carts)
	}
}

func mapsValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// The checks docker-compose.yml gets that concern every service, on the merged project.
func TestClusterServicesHealthRestartPorts(t *testing.T) {
	p := loadCluster(t)
	seen := map[string]string{}
	for _, s := range p.Services {
		if isOneShot(s) || len(s.Profiles) > 0 {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			if hc := s.HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
				t.Errorf("no health check")
			}
			if !slices.Contains([]string{types.RestartPolicyUnlessStopped, types.RestartPolicyAlways, types.RestartPolicyOnFailure}, s.Restart) {
				t.Errorf("restart %q; a crashed server would stay down", s.Restart)
			}
			for _, pc := range s.Ports {
				key := pc.HostIP + ":" + pc.Published + "/" + pc.Protocol
				if other, ok := seen[key]; ok {
					t.Errorf("%s and %s both publish %s", other, s.Name, key)
				}
				seen[key] = s.Name
				if pc.HostIP != "127.0.0.1" {
					t.Errorf("publishes %s on %q; bind to 127.0.0.1", pc.Published, pc.HostIP)
				}
			}
			for dep, d := range s.DependsOn {
				ds, err := p.GetService(dep)
				if err != nil {
					t.Errorf("depends on %s, which does not exist", dep)
					continue
				}
				if !isOneShot(ds) && d.Condition == types.ServiceConditionStarted && !strings.HasPrefix(dep, "cart-service") {
					t.Errorf("depends on %s only being started; wait for it to be healthy", dep)
				}
			}
		})
	}
}
