// Package embednats runs a real nats-server with JetStream inside the
// process: for tests, for fulfillctl up and for the bench, so nothing has to
// be installed for a first run.
package embednats

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNotReady is returned when the server did not accept connections in time.
var ErrNotReady = errors.New("embedded nats-server not ready")

// Options configure an embedded server.
type Options struct {
	// StoreDir holds JetStream's file storage; required.
	StoreDir string
	// Host and Port to listen on; Port 0 (the default) picks a free port,
	// -1 too. Host defaults to 127.0.0.1.
	Host string
	Port int
	// Name is the server name; required in a cluster.
	Name string
	// Cluster, when set, joins a cluster: its name, this node's cluster
	// listen port and the routes to the other nodes (nats-route://host:port).
	ClusterName string
	ClusterPort int
	Routes      []string
	// SyncAlways makes JetStream fsync every write (sync_interval: always).
	SyncAlways bool
	// MaxPayload is the largest message the server takes; 0 means 8 MiB.
	MaxPayload int32
	// Token, or User and Password, make clients authenticate (the client
	// URL then carries them: nats://TOKEN@host, nats://user:pass@host).
	Token, User, Password string
}

// Start runs a server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embednats: StoreDir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		// Keep the embedded server's own logging out of the services' logs.
		NoLog:      true,
		MaxPayload: cmp.Or(o.MaxPayload, 8<<20),
		// A reservation, not an allocation: room for the ORDERS stream's
		// default STREAM_MAX_BYTES (10 GiB) and the KV buckets.
		JetStreamMaxStore:  64 << 30,
		JetStreamMaxMemory: 512 << 20,
	}
	if o.SyncAlways {
		opts.SyncAlways = true
	}
	opts.Authorization, opts.Username, opts.Password = o.Token, o.User, o.Password
	if o.ClusterName != "" {
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: o.Host, Port: o.ClusterPort}
		opts.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embednats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, ErrNotReady
	}
	return s, nil
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return strconv.Atoi(p)
}
