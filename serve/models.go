package serve

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gotf/gotf/savedmodel/runner"
)

// State is a version's state, as TF Serving's ModelVersionStatus.State.
type State int

// The states of ModelVersionStatus, with their proto numbers.
const (
	StateUnknown   State = 0
	StateStart     State = 10
	StateLoading   State = 20
	StateAvailable State = 30
	StateUnloading State = 40
	StateEnd       State = 50
)

func (s State) String() string {
	switch s {
	case StateStart:
		return "START"
	case StateLoading:
		return "LOADING"
	case StateAvailable:
		return "AVAILABLE"
	case StateUnloading:
		return "UNLOADING"
	case StateEnd:
		return "END"
	}
	return "UNKNOWN"
}

// VersionStatus is one version's ModelVersionStatus.
type VersionStatus struct {
	Version int64
	State   State
	// Err is why the version failed to load (its health); nil when OK.
	Err *Status
}

// TransitionPolicy is how a model moves from the versions it serves to
// newly aspired ones: TF Serving's AspiredVersionPolicy.
type TransitionPolicy int

// TF Serving's two aspired-version policies.
const (
	// AvailabilityPreserving loads new versions before it unloads the ones
	// no longer aspired, and keeps an old version serving while no aspired
	// one is available (a new version that fails to load leaves the old one
	// in place). It needs room for two versions at once.
	AvailabilityPreserving TransitionPolicy = iota
	// ResourcePreserving unloads the versions no longer aspired (after the
	// requests using them) before it loads new ones, so that only one
	// version needs memory at a time; between the two a request for the
	// model finds no version (NotFound, as TF Serving answers).
	ResourcePreserving
)

func (p TransitionPolicy) String() string {
	switch p {
	case AvailabilityPreserving:
		return "AvailabilityPreserving"
	case ResourcePreserving:
		return "ResourcePreserving"
	}
	return fmt.Sprintf("TransitionPolicy(%d)", int(p))
}

// version is one version of a model, from the first sight of its
// directory to its unloading. Requests hold it through inflight, so that
// unloading waits for them and no request sees a closed session.
type version struct {
	num      int64
	dir      string
	state    State
	err      *Status
	failures int
	failedAt time.Time
	model    *runner.Model
	inflight sync.WaitGroup
}

// servable is one configured model and its versions. Its name and base
// path never change (a new base path is a new servable); its policy and
// labels may, under the manager's lock.
type servable struct {
	cfg      ModelConfig // Name and BasePath; read policy and labels below
	policy   VersionPolicy
	labels   map[string]int64
	versions map[int64]*version
	stop     context.CancelFunc // stops its watcher
	done     chan struct{}      // closed when its watcher has returned
}

// manager loads and unloads the versions of every model as their base
// paths and policies say, one polling goroutine per model.
type manager struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex // guards byName, cfgs, every version's state and inflight.Add
	byName map[string]*servable

	started bool
	closed  bool
	scanned chan struct{} // closed when every model of the first config has been scanned once

	// warmup, when set, replays a loaded version's warm-up requests before
	// it becomes AVAILABLE; an error fails the load.
	warmup func(ctx context.Context, model string, v *version, m *runner.Model) error
	// changed, when set, is called (without mu) after states change, so
	// that readiness can be told to health checkers.
	changed func()
}

// configured reports whether name is one of the models of the current
// config.
func (m *manager) configured(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.byName[name]
	return ok
}

func newServable(mc ModelConfig) *servable {
	return &servable{cfg: mc, policy: mc.Policy, labels: mc.VersionLabels, versions: map[int64]*version{}}
}

func newManager(cfg Config, log *slog.Logger) *manager {
	m := &manager{cfg: cfg, log: log, byName: map[string]*servable{}, scanned: make(chan struct{})}
	for _, mc := range cfg.Models {
		m.byName[mc.Name] = newServable(mc)
	}
	return m
}

// start begins watching every model's base path.
func (m *manager) start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = true
	var first sync.WaitGroup
	for _, s := range m.byName {
		first.Add(1)
		m.watchLocked(s, first.Done)
	}
	go func() { first.Wait(); close(m.scanned) }()
}

// watchLocked starts s's watcher; scanned is called after its first scan.
func (m *manager) watchLocked(s *servable, scanned func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go m.watch(ctx, s, scanned)
}

// reload makes models the served set, as TF Serving's config reload
// does: new models are watched and loaded, removed ones stopped and
// unloaded (after their requests), and a kept model takes its new policy
// and labels at its next scan (a new base path makes it a new model).
func (m *manager) reload(models []ModelConfig) {
	want := map[string]ModelConfig{}
	for _, mc := range models {
		want[mc.Name] = mc
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	var removed []*servable
	for name, s := range m.byName {
		mc, keep := want[name]
		if keep && mc.BasePath == s.cfg.BasePath {
			s.policy, s.labels = mc.Policy, mc.VersionLabels
			continue
		}
		removed = append(removed, s)
		delete(m.byName, name)
	}
	for name, mc := range want {
		if m.byName[name] == nil {
			s := newServable(mc)
			m.byName[name] = s
			if m.started {
				m.watchLocked(s, func() {})
			}
		}
	}
	m.mu.Unlock()
	m.notify()
	for _, s := range removed {
		m.stopServable(s)
		m.log.Info("model removed by a new config", "model", s.cfg.Name)
	}
}

// stopServable stops a servable's watcher and unloads its versions.
func (m *manager) stopServable(s *servable) {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	m.mu.Lock()
	var vs []*version
	for _, v := range s.versions {
		if v.state == StateAvailable {
			v.state = StateUnloading
			vs = append(vs, v)
		}
	}
	m.mu.Unlock()
	for _, v := range vs {
		m.unload(s, v)
	}
}

// close stops the watchers and unloads every version, after the requests
// that hold them.
func (m *manager) close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*servable, 0, len(m.byName))
	for _, s := range m.byName {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		m.stopServable(s)
	}
}

func (m *manager) watch(ctx context.Context, s *servable, scanned func()) {
	defer close(s.done)
	m.reconcile(ctx, s)
	scanned()
	if m.cfg.PollInterval < 0 {
		return
	}
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.reconcile(ctx, s)
		}
	}
}

// scan lists the numeric subdirectories of a base path, as TF Serving's
// file system storage path source does.
func scan(base string) (map[int64]string, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	out := map[int64]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || v < 0 {
			continue
		}
		out[v] = filepath.Join(base, e.Name())
	}
	return out, nil
}

// reconcile brings a model's versions to what its policy aspires to, in
// the order of the transition policy: new versions loaded first and the
// ones no longer aspired unloaded after (availability preserving), or the
// other way round (resource preserving). New versions load highest first,
// as both of TF Serving's policies load them.
func (m *manager) reconcile(ctx context.Context, s *servable) {
	present, err := scan(s.cfg.BasePath)
	if err != nil {
		m.log.Warn("scanning model base path", "model", s.cfg.Name, "path", s.cfg.BasePath, "err", err)
		present = map[int64]string{}
	}
	nums := make([]int64, 0, len(present))
	for v := range present {
		nums = append(nums, v)
	}
	aspired := map[int64]bool{}
	var toLoad []*version
	m.mu.Lock()
	for _, v := range s.policy.aspired(nums) {
		aspired[v] = true
		cur := s.versions[v]
		switch {
		case cur == nil || cur.state == StateEnd && cur.err == nil:
			cur = &version{num: v, dir: present[v], state: StateStart}
			s.versions[v] = cur
			toLoad = append(toLoad, cur)
		case cur.state == StateEnd && cur.err != nil && cur.failures <= m.cfg.LoadRetries && time.Since(cur.failedAt) >= m.cfg.LoadRetryInterval:
			cur.state = StateStart
			toLoad = append(toLoad, cur)
		}
	}
	m.mu.Unlock()
	if len(toLoad) > 0 {
		m.notify()
	}
	if m.cfg.VersionTransition == ResourcePreserving {
		m.unloadUnaspired(s, aspired, false)
	}
	for _, v := range toLoad {
		if ctx.Err() != nil {
			return
		}
		m.load(ctx, s, v)
	}
	m.unloadUnaspired(s, aspired, m.cfg.VersionTransition == AvailabilityPreserving)
}

// unloadUnaspired unloads the available versions of s that are not
// aspired. With keepOne, as TF Serving's availability-preserving policy,
// the highest of them stays while aspired versions exist but none is
// available (a new version that failed to load), so that the model still
// answers.
func (m *manager) unloadUnaspired(s *servable, aspired map[int64]bool, keepOne bool) {
	m.mu.Lock()
	var old []*version
	aspiredAvailable := false
	for num, v := range s.versions {
		switch {
		case aspired[num]:
			aspiredAvailable = aspiredAvailable || v.state == StateAvailable
		case v.state == StateAvailable:
			old = append(old, v)
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].num > old[j].num })
	if keepOne && len(aspired) > 0 && !aspiredAvailable && len(old) > 0 {
		old = old[1:]
	}
	for _, v := range old {
		v.state = StateUnloading
	}
	m.mu.Unlock()
	if len(old) == 0 {
		return
	}
	m.notify()
	for _, v := range old {
		m.unload(s, v)
	}
}

// load loads a version in state START and, with warm-up on, replays its
// warm-up requests before it becomes AVAILABLE; a failure is the
// version's error (END), tried again by reconcile.
func (m *manager) load(ctx context.Context, s *servable, v *version) {
	m.mu.Lock()
	v.state = StateLoading
	m.mu.Unlock()
	m.notify()
	m.log.Info("loading model version", "model", s.cfg.Name, "version", v.num, "dir", v.dir)
	start := time.Now()
	model, err := runner.LoadWithOptions(v.dir, m.cfg.Load)
	if err == nil && m.warmup != nil {
		if err = m.warmup(ctx, s.cfg.Name, v, model); err != nil {
			if cerr := model.Close(); cerr != nil {
				m.log.Warn("closing a version that failed its warm-up", "model", s.cfg.Name, "version", v.num, "err", cerr)
			}
		}
	}
	m.mu.Lock()
	if err != nil {
		v.state, v.failures, v.failedAt = StateEnd, v.failures+1, time.Now()
		v.err = statusOf(err)
		if v.err.Code == OK || v.err.Code == Unknown {
			v.err = &Status{Code: Unknown, Message: err.Error()}
		}
		m.mu.Unlock()
		m.log.Error("loading model version", "model", s.cfg.Name, "version", v.num, "err", err)
	} else {
		v.model, v.state, v.err = model, StateAvailable, nil
		m.mu.Unlock()
		m.log.Info("model version available", "model", s.cfg.Name, "version", v.num, "dir", v.dir, "load_time", time.Since(start).Round(time.Millisecond))
	}
	m.notify()
}

// unload closes a version in state UNLOADING once the requests holding it
// are done.
func (m *manager) unload(s *servable, v *version) {
	v.inflight.Wait()
	err := v.model.Close()
	// The version's variables were freed by Close; without this they stay
	// in the process's RSS, in malloc's arenas (trim_linux.go).
	releaseFreedMemory()
	m.mu.Lock()
	v.state, v.model = StateEnd, nil
	m.mu.Unlock()
	m.notify()
	if err != nil {
		m.log.Warn("unloading model version", "model", s.cfg.Name, "version", v.num, "err", err)
		return
	}
	m.log.Info("model version unloaded", "model", s.cfg.Name, "version", v.num)
}

// notify tells the changed hook that states changed.
func (m *manager) notify() {
	if m.changed != nil {
		m.changed()
	}
}

// spec names what a request asks for: a model and a version, a label, or
// neither (the latest available version).
type spec struct {
	model   string
	version *int64
	label   string
}

func (sp spec) String() string {
	if sp.version != nil {
		return fmt.Sprintf("Specific(%s, %d)", sp.model, *sp.version)
	}
	return fmt.Sprintf("Latest(%s)", sp.model)
}

// handle is a version held for one request; release it when done.
type handle struct {
	name    string
	version int64
	model   *runner.Model
	v       *version
}

func (h *handle) release() { h.v.inflight.Done() }

// hold is another hold on h's version, released on its own.
func (h *handle) hold() *handle {
	h.v.inflight.Add(1)
	c := *h
	return &c
}

// acquire finds the version a request asks for, available, and holds it
// (TF Serving's GetServableHandle, with its messages).
func (m *manager) acquire(sp spec) (*handle, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.byName[sp.model]
	if sp.label != "" {
		if s == nil {
			return nil, statusf(InvalidArgument, "Unrecognized servable version label: %s", sp.label)
		}
		n, ok := s.labels[sp.label]
		if !ok {
			return nil, statusf(InvalidArgument, "Unrecognized servable version label: %s", sp.label)
		}
		sp.version = &n
	}
	notFound := statusf(NotFound, "Servable not found for request: %s", sp)
	if s == nil {
		return nil, notFound
	}
	var v *version
	if sp.version != nil {
		v = s.versions[*sp.version]
	} else {
		for _, c := range s.versions {
			if c.state == StateAvailable && (v == nil || c.num > v.num) {
				v = c
			}
		}
	}
	if v == nil || v.state != StateAvailable {
		return nil, notFound
	}
	v.inflight.Add(1)
	return &handle{name: s.cfg.Name, version: v.num, model: v.model, v: v}, nil
}

// status lists a model's versions, highest first, as GetModelStatus does;
// a label stands for its version.
func (m *manager) status(sp spec) ([]VersionStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.byName[sp.model]
	if sp.label != "" {
		var n int64
		ok := false
		if s != nil {
			n, ok = s.labels[sp.label]
		}
		if !ok {
			return nil, statusf(InvalidArgument, "Unrecognized servable version label: %s", sp.label)
		}
		sp.version = &n
	}
	if sp.version != nil {
		if s == nil || s.versions[*sp.version] == nil {
			return nil, statusf(NotFound, "Could not find version %d of model %s", *sp.version, sp.model)
		}
		v := s.versions[*sp.version]
		return []VersionStatus{{Version: v.num, State: v.state, Err: v.err}}, nil
	}
	if s == nil || len(s.versions) == 0 {
		return nil, statusf(NotFound, "Could not find any versions of model %s", sp.model)
	}
	out := make([]VersionStatus, 0, len(s.versions))
	for _, v := range s.versions {
		out = append(out, VersionStatus{Version: v.num, State: v.state, Err: v.err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}
