package serve

import (
	"fmt"
	"sort"
	"time"

	"github.com/gotf/gotf/savedmodel/runner"
)

// Config configures a Server. Its zero value, plus at least one model,
// serves as tensorflow_model_server does with its default flags.
type Config struct {
	// Models are the models to serve (TF Serving's model_config_list).
	Models []ModelConfig
	// PollInterval is how often each model's base path is scanned for
	// versions (--file_system_poll_wait_seconds); 0 means 1 s, negative
	// means scan once at start.
	PollInterval time.Duration
	// LoadRetries is how many times a version that failed to load is tried
	// again (--max_num_load_retries); 0 means 5, negative none.
	LoadRetries int
	// LoadRetryInterval is the least time between two tries of a version
	// (--load_retry_interval_micros); 0 means 1 min, as in TF Serving, so
	// that a version directory copied in slowly (not renamed into place)
	// gets time to be complete.
	LoadRetryInterval time.Duration
	// RequestTimeout bounds a predict, classify or regress run
	// (--rest_api_timeout_in_ms); 0 means 30 s, negative none.
	RequestTimeout time.Duration
	// MaxRequestBytes bounds a request body; 0 means 64 MiB. A larger body
	// is refused with ResourceExhausted before it is read whole.
	MaxRequestBytes int64
	// MaxJSONValues bounds the JSON values (numbers, strings, lists,
	// objects) of one request, counted while it is parsed; 0 means 4 Mi.
	MaxJSONValues int
	// MaxJSONDepth bounds the nesting of a request's JSON; 0 means 64.
	MaxJSONDepth int
	// DisableModelWarmup turns off the replay of a version's warm-up
	// requests (assets.extra/tf_serving_warmup_requests in its directory,
	// TFRecords of PredictionLog) before it becomes AVAILABLE; it is
	// --enable_model_warmup=false. Warm-up is on by default, as in
	// tensorflow_model_server.
	DisableModelWarmup bool
	// WarmupIterations is how many times each warm-up record is replayed
	// (--num_request_iterations_for_warmup, ModelWarmupOptions'
	// num_request_iterations); 0 means 1.
	WarmupIterations int
	// VersionTransition is how a model moves to new versions: load them
	// before unloading the old (AvailabilityPreserving, the default, as in
	// TF Serving) or unload the old first (ResourcePreserving).
	VersionTransition TransitionPolicy
	// Load configures the loading of every version (session options, and
	// MaxInputBytes: the bound on one run's input tensors).
	Load runner.LoadOptions
	// Batching, when set, merges concurrent predict runs into one
	// session run as TF Serving's --enable_batching does, with its
	// --batching_parameters_file (ReadBatchingParametersFile).
	Batching *BatchingConfig
	// Monitoring configures the Prometheus metrics endpoint of the REST
	// port (--monitoring_config_file, ReadMonitoringConfigFile); the zero
	// value serves it at DefaultMetricsPath.
	Monitoring MonitoringConfig
}

// ModelConfig is one model: TF Serving's ModelConfig message.
type ModelConfig struct {
	// Name is the model's name in request paths.
	Name string
	// BasePath is the directory holding the numeric version
	// subdirectories (BasePath/1, BasePath/2, ...).
	BasePath string
	// Policy chooses the versions to serve (the zero value: the latest).
	Policy VersionPolicy
	// VersionLabels map labels ("stable", "canary") to versions, for
	// /labels/{l} paths.
	VersionLabels map[string]int64
}

// PolicyKind is the kind of a VersionPolicy.
type PolicyKind int

// The version policies of TF Serving's FileSystemStoragePathSourceConfig.
const (
	// Latest serves the NumVersions highest versions.
	Latest PolicyKind = iota
	// All serves every version.
	All
	// Specific serves the listed versions.
	Specific
)

// VersionPolicy is TF Serving's model_version_policy.
type VersionPolicy struct {
	Kind PolicyKind
	// NumVersions is latest's num_versions; 0 means 1.
	NumVersions int
	// Versions are specific's versions.
	Versions []int64
}

// aspired picks from the versions present the ones the policy serves.
func (p VersionPolicy) aspired(present []int64) []int64 {
	sorted := append([]int64(nil), present...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] > sorted[j] })
	switch p.Kind {
	case All:
		return sorted
	case Specific:
		want := map[int64]bool{}
		for _, v := range p.Versions {
			want[v] = true
		}
		var out []int64
		for _, v := range sorted {
			if want[v] {
				out = append(out, v)
			}
		}
		return out
	}
	n := p.NumVersions
	if n <= 0 {
		n = 1
	}
	return sorted[:min(n, len(sorted))]
}

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.PollInterval == 0 {
		out.PollInterval = time.Second
	}
	if out.LoadRetries == 0 {
		out.LoadRetries = 5
	}
	if out.LoadRetryInterval <= 0 {
		out.LoadRetryInterval = time.Minute
	}
	if out.RequestTimeout == 0 {
		out.RequestTimeout = 30 * time.Second
	}
	if out.MaxRequestBytes <= 0 {
		out.MaxRequestBytes = 64 << 20
	}
	if out.MaxJSONValues <= 0 {
		out.MaxJSONValues = 4 << 20
	}
	if out.MaxJSONDepth <= 0 {
		out.MaxJSONDepth = 64
	}
	return out, validateModels(out.Models)
}

// validateModels checks a set of models as New and Reload take it.
func validateModels(models []ModelConfig) error {
	if len(models) == 0 {
		return fmt.Errorf("serve: no models configured")
	}
	seen := map[string]bool{}
	for _, m := range models {
		if m.Name == "" {
			return fmt.Errorf("serve: a model without a name (base path %q)", m.BasePath)
		}
		if m.BasePath == "" {
			return fmt.Errorf("serve: model %q has no base path", m.Name)
		}
		if seen[m.Name] {
			return fmt.Errorf("serve: model %q configured twice", m.Name)
		}
		seen[m.Name] = true
		if m.Policy.Kind == Specific && len(m.Policy.Versions) == 0 {
			return fmt.Errorf("serve: model %q: the specific version policy lists no versions", m.Name)
		}
	}
	return nil
}
