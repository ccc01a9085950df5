package serve

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serveHealth answers the probes Kubernetes users expect on the REST
// port, outside TF Serving's /v1/ API: /healthz and /livez (liveness: the
// process answers) and /readyz (readiness: every model has a version
// AVAILABLE and none loading, and the server is not shutting down). It
// reports whether the path was one of them.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) bool {
	var ready bool
	switch r.URL.Path {
	case "/healthz", "/livez":
	case "/readyz":
		ready = true
	default:
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		io.WriteString(w, `{ "error": `+quoteJSON("Method not allowed: "+r.Method+" "+r.URL.Path)+` }`+"\n")
		return true
	}
	if ready {
		if reason := s.notReady(); reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{ "status": "not ready", "reason": `+quoteJSON(reason)+` }`+"\n")
			return true
		}
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, `{ "status": "ok" }`+"\n")
	return true
}

// notReady says why the server is not ready, or "" when it is.
func (s *Server) notReady() string {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return "the server is shutting down"
	}
	return s.models.notReady()
}

// updateHealth sets the gRPC health service's overall status ("") to the
// server's readiness; after Close the health service has already been
// shut down (NOT_SERVING for all) and keeps that.
func (s *Server) updateHealth() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.mu.Lock()
	hs, closed := s.health, s.closed
	s.mu.Unlock()
	if hs == nil || closed {
		return
	}
	st := healthpb.HealthCheckResponse_SERVING
	if s.models.notReady() != "" {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	hs.SetServingStatus("", st)
}

// notReady names the models that are not ready, in name order, or "" when
// all are.
func (m *manager) notReady() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "the server is shutting down"
	}
	names := make([]string, 0, len(m.byName))
	for name := range m.byName {
		names = append(names, name)
	}
	sort.Strings(names)
	var reasons []string
	for _, name := range names {
		if r := m.byName[name].notReady(); r != "" {
			reasons = append(reasons, fmt.Sprintf("model %s: %s", name, r))
		}
	}
	return strings.Join(reasons, "; ")
}

// notReady says why a model is not ready (a version starting or loading,
// or none available, with the last load error), or "" when it is; a
// version that failed while another is available does not hold readiness
// back. Call it with the manager's lock held.
func (s *servable) notReady() string {
	nums := make([]int64, 0, len(s.versions))
	for n := range s.versions {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] > nums[j] })
	var pending []string
	var failed *version
	available := false
	for _, n := range nums {
		v := s.versions[n]
		switch {
		case v.state == StateStart || v.state == StateLoading:
			pending = append(pending, fmt.Sprintf("version %d is %s", v.num, v.state))
		case v.state == StateAvailable:
			available = true
		case v.state == StateEnd && v.err != nil && failed == nil:
			failed = v
		}
	}
	switch {
	case len(pending) > 0:
		return strings.Join(pending, ", ")
	case available:
		return ""
	case failed != nil:
		return fmt.Sprintf("no version available (version %d failed to load: %s)", failed.num, failed.err.Message)
	}
	return "no version available"
}
