package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition: nil when ready.
type Check func(ctx context.Context) error

// Admin serves /healthz (the process is alive), /readyz (every check
// passes) and /metrics.
type Admin struct {
	mu     sync.Mutex
	checks map[string]Check
	srv    *http.Server
	ln     net.Listener
}

// NewAdmin listens on addr (":0" picks a free port).
func NewAdmin(addr string, m *Metrics, withPprof bool) (*Admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen on %s: %w", addr, err)
	}
	a := &Admin{checks: map[string]Check{}, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	// Profiles only when asked (ADMIN_PPROF): they have no auth, and a
	// profile or trace costs the process CPU for as long as anyone asks.
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return a, nil
}

// adminListening is the context key of NotifyAdmin's func.
type adminListening struct{}

// NotifyAdmin returns a context under which Run calls fn with the binary's
// name and the address its admin server listens on, as soon as it does:
// how a runner of services in one process (fulfillctl up) learns the
// ports ADMIN_ADDR 127.0.0.1:0 picked.
func NotifyAdmin(ctx context.Context, fn func(binary, addr string)) context.Context {
	return context.WithValue(ctx, adminListening{}, fn)
}

// notifyAdmin tells ctx's NotifyAdmin func, if any, that binary's admin
// server listens on addr.
func notifyAdmin(ctx context.Context, binary, addr string) {
	if fn, ok := ctx.Value(adminListening{}).(func(string, string)); ok {
		fn(binary, addr)
	}
}

// Addr is the address the server listens on.
func (a *Admin) Addr() string { return a.ln.Addr().String() }

// AddCheck adds a readiness condition under name.
func (a *Admin) AddCheck(name string, c Check) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = c
}

func (a *Admin) readyz(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	checks := make(map[string]Check, len(a.checks))
	for k, v := range a.checks {
		checks[k] = v
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	for name, c := range checks {
		if err := c(ctx); err != nil {
			status[name], code = err.Error(), http.StatusServiceUnavailable
			continue
		}
		status[name] = "ok"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(status)
}

// Serve runs the server until ctx ends, then shuts it down.
func (a *Admin) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}
