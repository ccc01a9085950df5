package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
)

// Server serves the models of a Config over TF Serving's REST and gRPC
// APIs. Create it with New, start it with Start (it loads and watches the
// models), then call Serve (REST) and/or ServeGRPC on listeners, or mount
// it as an http.Handler; Close stops everything and unloads the models.
type Server struct {
	cfg    Config
	log    *slog.Logger
	models *manager
	extras *serverExtras

	mu      sync.Mutex
	http    *http.Server
	grpc    *grpc.Server
	health  *health.Server
	started bool
	closed  bool

	// healthMu orders the updates of the gRPC health status, so that an
	// older readiness never overwrites a newer one.
	healthMu sync.Mutex
}

// New checks a configuration and returns a server that has loaded nothing
// yet. A nil logger means slog.Default().
func New(cfg Config, log *slog.Logger) (*Server, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if c.WarmupIterations < 0 {
		return nil, fmt.Errorf("serve: WarmupIterations is %d; give a positive count (0: 1)", c.WarmupIterations)
	}
	if c.VersionTransition != AvailabilityPreserving && c.VersionTransition != ResourcePreserving {
		return nil, fmt.Errorf("serve: unknown VersionTransition %v", c.VersionTransition)
	}
	if c.Batching != nil {
		b := *c.Batching
		if err := b.Validate(); err != nil {
			return nil, err
		}
		c.Batching = &b
	}
	if err := c.Monitoring.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: c, log: log, models: newManager(c, log), extras: newServerExtras(c, log)}
	if !c.DisableModelWarmup {
		s.models.warmup = s.warmup
	}
	s.models.changed = s.updateHealth
	return s, nil
}

// Start begins loading every model's versions and watching its base path,
// and returns once each base path has been scanned and its first versions
// loaded (or failed), or when ctx is done. Requests before then find no
// version (NotFound), as with TF Serving.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("serve: Start called twice or after Close")
	}
	s.started = true
	s.mu.Unlock()
	s.models.start()
	select {
	case <-s.models.scanned:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Serve answers REST requests on l until Close; it returns
// http.ErrServerClosed after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if s.http == nil {
		s.http = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	}
	hs := s.http
	s.mu.Unlock()
	return hs.Serve(l)
}

// Reload makes models the set served, as TF Serving does when its model
// config is reloaded: models new to the set are loaded, models gone from it
// unloaded once their requests are done, and a model that stays takes its
// new version policy and labels at its next scan (one whose base path
// changed is unloaded and loaded again from the new path).
func (s *Server) Reload(models []ModelConfig) error {
	if err := validateModels(models); err != nil {
		return err
	}
	s.models.reload(models)
	return nil
}

// ModelStatus is the status of a model's versions, highest first (with
// version set, that version's only).
func (s *Server) ModelStatus(model string, version *int64) ([]VersionStatus, error) {
	return s.models.status(spec{model: model, version: version})
}

// Close stops answering (requests under way finish, up to ctx), stops
// watching the base paths and unloads every version.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	hs, gs, health := s.http, s.grpc, s.health
	s.mu.Unlock()
	// Both APIs drain at once, so that the slower one does not use up the
	// other's share of ctx.
	grpcDone := make(chan error, 1)
	go func() { grpcDone <- s.stopGRPC(ctx, gs, health) }()
	var err error
	if hs != nil {
		if err = hs.Shutdown(ctx); err != nil {
			err = fmt.Errorf("serve: stopping the HTTP server: %w", err)
			hs.Close()
		}
	}
	err = errors.Join(err, <-grpcDone)
	s.models.close()
	return err
}
