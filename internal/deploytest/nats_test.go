package deploytest

import (
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSConfig loads deploy/nats's configuration with nats-server's own
// parser, as each compose node runs it, and checks the settings the
// pipeline relies on: JetStream with every write synced before the
// acknowledgement, the node's own name, and routes to every node.
func TestNATSConfig(t *testing.T) {
	c := loadCompose(t)
	nodes := c.natsNodes()
	for _, name := range nodes {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			src := mountSource(s.Volumes, configArg(s.Command))
			if src == "" {
				t.Fatal("no config file mounted")
			}
			t.Setenv("SERVER_NAME", s.Environment["SERVER_NAME"])
			opts, err := server.ProcessConfigFile(filepath.Join(deployPath(t), src))
			if err != nil {
				t.Fatalf("nats-server rejects %s: %v", src, err)
			}
			if opts.ServerName != s.Environment["SERVER_NAME"] {
				t.Errorf("server_name %q, want %q", opts.ServerName, s.Environment["SERVER_NAME"])
			}
			if !opts.JetStream {
				t.Error("JetStream is off")
			}
			if !opts.SyncAlways {
				t.Error("jetstream.sync_interval is not always: acknowledged writes could be lost")
			}
			if opts.StoreDir == "" || mountSource(s.Volumes, "/data") == "" || !strings.HasPrefix(opts.StoreDir, "/data") {
				t.Errorf("store_dir %q is not on the /data volume", opts.StoreDir)
			}
			if opts.Cluster.Name == "" || opts.Cluster.Port == 0 {
				t.Errorf("cluster name %q port %d: not clustered", opts.Cluster.Name, opts.Cluster.Port)
			}
			if opts.HTTPPort == 0 {
				t.Error("no monitoring port: the healthcheck and KEDA read it")
			}
			var hosts []string
			for _, r := range opts.Routes {
				hosts = append(hosts, routeHost(r))
			}
			sort.Strings(hosts)
			if !sameSet(hosts, nodes) {
				t.Errorf("routes to %v, want every node %v", hosts, nodes)
			}
		})
	}
}

func routeHost(u *url.URL) string { return u.Hostname() }
