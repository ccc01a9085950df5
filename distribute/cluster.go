package distribute

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"syscall"

	"github.com/gotf/gotf/internal/excerpt"
	"github.com/gotf/gotf/tfgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// ClusterSpec maps a job name ("chief", "worker", "ps", "evaluator") to the
// "host:port" addresses of its tasks, task i at index i
// (tf.train.ClusterSpec).
type ClusterSpec map[string][]string

// Jobs are the cluster's job names, sorted.
func (c ClusterSpec) Jobs() []string {
	jobs := make([]string, 0, len(c))
	for j := range c {
		jobs = append(jobs, j)
	}
	sort.Strings(jobs)
	return jobs
}

// ClusterDef is c as TensorFlow's ClusterDef, jobs sorted by name as
// ClusterSpec.as_cluster_def writes them.
func (c ClusterSpec) ClusterDef() *cpb.ClusterDef {
	def := &cpb.ClusterDef{}
	for _, j := range c.Jobs() {
		tasks := make(map[int32]string, len(c[j]))
		for i, a := range c[j] {
			tasks[int32(i)] = a
		}
		def.Job = append(def.Job, &cpb.JobDef{Name: j, Tasks: tasks})
	}
	return def
}

// TFConfig is the TF_CONFIG environment variable that cluster managers set
// for every task of a multi-worker job:
//
//	{"cluster": {"worker": ["host1:2222", "host2:2222"]},
//	 "task": {"type": "worker", "index": 1}, "rpc_layer": "grpc"}
//
// It is read as Python's TFConfigClusterResolver reads it and checked as
// MultiWorkerMirroredStrategy checks it (multi_worker_util's
// _validate_cluster_spec).
type TFConfig struct {
	// Cluster is every task of the job; empty when TF_CONFIG has none.
	Cluster ClusterSpec
	// Task is this process' task; Type is "" when TF_CONFIG has no task.
	Task struct {
		Type  string
		Index int
	}
	// RPCLayer is the protocol of the servers, "grpc" when TF_CONFIG names
	// none (Python: rpc_layer or "grpc").
	RPCLayer string
}

// allowedJobs are the jobs _validate_cluster_spec accepts.
var allowedJobs = map[string]bool{"chief": true, "worker": true, "ps": true, "evaluator": true}

// ParseTFConfig reads a TF_CONFIG value. Keys other than "cluster", "task"
// and "rpc_layer" ("session_master", "environment", ...) are ignored, as
// Python ignores them for a server. A job's tasks are a list of addresses,
// or an object from task index to address whose indices must be 0..n-1
// (Python also takes sparse indices, which a ClusterSpec here cannot
// hold). Beyond Python's checks, the value must be a JSON object,
// addresses must be host:port, a task index must be non-negative, and a
// task must have both a type and an index.
func ParseTFConfig(data []byte) (TFConfig, error) {
	var cfg TFConfig
	var raw struct {
		Cluster  map[string]json.RawMessage `json:"cluster"`
		Task     map[string]json.RawMessage `json:"task"`
		RPCLayer *string                    `json:"rpc_layer"`
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return cfg, fmt.Errorf("TF_CONFIG must be a JSON object, got %s", excerpt.Of(t))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return cfg, fmt.Errorf("TF_CONFIG: %w", err)
	}
	if dec.More() {
		return cfg, errors.New("TF_CONFIG: data after the JSON object")
	}
	cfg.Cluster = ClusterSpec{}
	for job, m := range raw.Cluster {
		tasks, err := parseTasks(m)
		if err != nil {
			return cfg, fmt.Errorf("TF_CONFIG: cluster.%s: %w", job, err)
		}
		for i, a := range tasks {
			if err := checkAddress(a); err != nil {
				return cfg, fmt.Errorf("TF_CONFIG: cluster.%s[%d]: %w", job, i, err)
			}
		}
		cfg.Cluster[job] = tasks
	}
	if raw.Task != nil {
		t, hasType := raw.Task["type"]
		ix, hasIndex := raw.Task["index"]
		if hasType != hasIndex {
			if hasType {
				return cfg, errors.New("TF_CONFIG: task.index is missing")
			}
			return cfg, errors.New("TF_CONFIG: task.type is missing")
		}
		if hasType {
			if err := json.Unmarshal(t, &cfg.Task.Type); err != nil || cfg.Task.Type == "" {
				return cfg, fmt.Errorf("TF_CONFIG: task.type must be a non-empty string, got %s", excerpt.Of(t))
			}
			i, err := parseIndex(ix)
			if err != nil {
				return cfg, fmt.Errorf("TF_CONFIG: task.index: %w", err)
			}
			cfg.Task.Index = i
		}
	}
	cfg.RPCLayer = "grpc"
	if raw.RPCLayer != nil && *raw.RPCLayer != "" {
		cfg.RPCLayer = *raw.RPCLayer
	}
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("TF_CONFIG: %w", err)
	}
	return cfg, nil
}

// TFConfigFromEnv parses the TF_CONFIG environment variable; ok is false
// when it is not set (a single-process job).
func TFConfigFromEnv() (cfg TFConfig, ok bool, err error) {
	v, ok := os.LookupEnv("TF_CONFIG")
	if !ok {
		return TFConfig{}, false, nil
	}
	cfg, err = ParseTFConfig([]byte(v))
	return cfg, true, err
}

func parseTasks(m json.RawMessage) ([]string, error) {
	var list []string
	if err := json.Unmarshal(m, &list); err == nil {
		return list, nil
	}
	var byIndex map[string]string
	if err := json.Unmarshal(m, &byIndex); err != nil {
		return nil, fmt.Errorf("must be a list of addresses or an object from task index to address, got %s", excerpt.Of(m))
	}
	tasks := make([]string, len(byIndex))
	for k, a := range byIndex {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(byIndex) || tasks[i] != "" {
			return nil, fmt.Errorf("task indices must be 0..%d, got %s", len(byIndex)-1, excerpt.Quote(k))
		}
		tasks[i] = a
	}
	return tasks, nil
}

// parseIndex takes what Python's int() takes from JSON: an integer or a
// string of one.
func parseIndex(m json.RawMessage) (int, error) {
	var n json.Number
	if err := json.Unmarshal(m, &n); err == nil {
		if i, err := strconv.Atoi(string(n)); err == nil {
			return i, nil
		}
	}
	var s string
	if err := json.Unmarshal(m, &s); err == nil {
		if i, err := strconv.Atoi(s); err == nil {
			return i, nil
		}
	}
	return 0, fmt.Errorf("must be an integer, got %s", excerpt.Of(m))
}

func checkAddress(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("address %s is not host:port", excerpt.Quote(a))
	}
	if p, err := strconv.Atoi(port); host == "" || err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("address %s is not host:port with a port in 1..65535", excerpt.Quote(a))
	}
	return nil
}

// validate is multi_worker_util._validate_cluster_spec, plus a
// non-negative index.
func (c TFConfig) validate() error {
	for _, j := range c.Cluster.Jobs() {
		if !allowedJobs[j] {
			return fmt.Errorf("cluster: job %s is not one of chief, worker, ps, evaluator", excerpt.Quote(j))
		}
	}
	t := c.Task.Type
	if t != "" && !allowedJobs[t] {
		return fmt.Errorf("task.type %s is not one of chief, worker, ps, evaluator", excerpt.Quote(t))
	}
	if _, ok := c.Cluster[t]; t != "" && !ok && t != "evaluator" {
		return fmt.Errorf("task.type %q is not a job of the cluster (%v)", t, c.Cluster.Jobs())
	}
	if len(c.Cluster["chief"]) > 1 {
		return fmt.Errorf("cluster: there must be at most one chief task, got %d", len(c.Cluster["chief"]))
	}
	if len(c.Cluster["evaluator"]) > 1 {
		return fmt.Errorf("cluster: there must be at most one evaluator task, got %d", len(c.Cluster["evaluator"]))
	}
	if c.Task.Index < 0 {
		return fmt.Errorf("task.index %d is negative", c.Task.Index)
	}
	if tasks, ok := c.Cluster[t]; t != "" && ok && c.Task.Index >= len(tasks) {
		return fmt.Errorf("task.index %d is out of range: job %q has %d tasks", c.Task.Index, t, len(tasks))
	}
	return nil
}

// CollectiveLeader is the task that resolves collective groups
// (multi_worker_util.collective_leader): the chief if the cluster has one,
// else worker 0; "" for an evaluator or an empty cluster.
func (c TFConfig) CollectiveLeader() string {
	switch {
	case len(c.Cluster) == 0 || c.Task.Type == "evaluator":
		return ""
	case len(c.Cluster["chief"]) > 0:
		return "/job:chief/replica:0/task:0"
	default:
		return "/job:worker/replica:0/task:0"
	}
}

// SessionConfig is base (nil: an empty ConfigProto; a copy either way)
// updated as MultiWorkerMirroredStrategy's _update_config_proto updates the
// config of its task: the scoped-allocator rewrite on for CollectiveReduce
// (it merges small all-reduces into larger ones), the collective group
// leader, and device_filters naming only this task, so that a session on
// this task's server contacts no other worker.
func (c TFConfig) SessionConfig(base *cpb.ConfigProto) *cpb.ConfigProto {
	cfg := &cpb.ConfigProto{}
	if base != nil {
		cfg = proto.Clone(base).(*cpb.ConfigProto)
	}
	if cfg.GraphOptions == nil {
		cfg.GraphOptions = &cpb.GraphOptions{}
	}
	if cfg.GraphOptions.RewriteOptions == nil {
		cfg.GraphOptions.RewriteOptions = &cpb.RewriterConfig{}
	}
	ro := cfg.GraphOptions.RewriteOptions
	ro.ScopedAllocatorOptimization = cpb.RewriterConfig_ON
	if ro.ScopedAllocatorOpts == nil {
		ro.ScopedAllocatorOpts = &cpb.ScopedAllocatorOptions{}
	}
	ro.ScopedAllocatorOpts.EnableOp = []string{"CollectiveReduce"}
	if len(c.Cluster) == 0 {
		return cfg
	}
	if cfg.Experimental == nil {
		cfg.Experimental = &cpb.ConfigProto_Experimental{}
	}
	cfg.Experimental.CollectiveGroupLeader = c.CollectiveLeader()
	cfg.DeviceFilters = []string{fmt.Sprintf("/job:%s/task:%d", c.Task.Type, c.Task.Index)}
	return cfg
}

// ServerDef is the ServerDef MultiWorkerMirroredStrategy starts for this
// task: the cluster, job_name and task_index of the task, protocol
// RPCLayer, and SessionConfig(base) as default_session_config, which is
// where each server's collective executor finds the group leader.
func (c TFConfig) ServerDef(base *cpb.ConfigProto) (*cpb.ServerDef, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("ServerDef: %w", err)
	}
	if c.Task.Type == "" {
		return nil, errors.New("ServerDef: the TF_CONFIG has no task (task.type and task.index)")
	}
	if _, ok := c.Cluster[c.Task.Type]; !ok {
		return nil, fmt.Errorf("ServerDef: task.type %q is not a job of the cluster (%v)", c.Task.Type, c.Cluster.Jobs())
	}
	for _, j := range c.Cluster.Jobs() {
		for i, a := range c.Cluster[j] {
			if err := checkAddress(a); err != nil {
				return nil, fmt.Errorf("ServerDef: cluster.%s[%d]: %w", j, i, err)
			}
		}
	}
	protocol := c.RPCLayer
	if protocol == "" {
		protocol = "grpc"
	}
	return &cpb.ServerDef{
		Cluster:              c.Cluster.ClusterDef(),
		JobName:              c.Task.Type,
		TaskIndex:            int32(c.Task.Index),
		Protocol:             protocol,
		DefaultSessionConfig: c.SessionConfig(base),
	}, nil
}

// StartServer creates and starts the server of cfg's task
// (ServerDef(nil)). Its Target is where this task's sessions run.
// TensorFlow cannot shut a started server down: it serves until the
// process exits (see tfgo.Server).
//
// A port already in use is reported as such, naming the task and its
// address, before TensorFlow tries it: TensorFlow's own error for it is
// "Could not start gRPC server", with neither.
func StartServer(cfg TFConfig) (*tfgo.Server, error) {
	def, err := cfg.ServerDef(nil)
	if err != nil {
		return nil, err
	}
	return startServer(cfg, def)
}

// startServer starts the server def describes (cfg's task's ServerDef).
func startServer(cfg TFConfig, def *cpb.ServerDef) (*tfgo.Server, error) {
	task := fmt.Sprintf("/job:%s/task:%d", cfg.Task.Type, cfg.Task.Index)
	addr := cfg.Cluster[cfg.Task.Type][cfg.Task.Index]
	if err := checkPortFree(addr); err != nil {
		return nil, fmt.Errorf("starting the server of %s: %w", task, err)
	}
	s, err := tfgo.NewServer(def)
	if err != nil {
		return nil, fmt.Errorf("starting the server of %s at %s: %w", task, excerpt.Quote(addr), err)
	}
	if err := s.Start(); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting the server of %s at %s: %w", task, excerpt.Quote(addr), err)
	}
	return s, nil
}

// checkPortFree listens on addr's port as TensorFlow's gRPC server will
// and lets it go. TensorFlow binds the port on every interface whatever
// the host (a dual-stack [::] socket, else 0.0.0.0) and starts if either
// works, so what must be free is the port on IPv4's wildcard: a port held
// only on an IPv6 address (say [::1]) does not stop it. Another process
// can still take the port before TensorFlow does; TensorFlow's error
// covers that.
func checkPortFree(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %s is not host:port", excerpt.Quote(addr))
	}
	l, err := net.Listen("tcp4", net.JoinHostPort("0.0.0.0", port))
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("address %s is in use: port %s is taken on this machine", excerpt.Quote(addr), port)
	}
	if err != nil {
		return fmt.Errorf("address %s: cannot listen on port %s: %w", excerpt.Quote(addr), port, err)
	}
	return l.Close()
}
