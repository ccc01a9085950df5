package distribute

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotf/gotf/tfgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// MultiWorkerOptions configure NewMultiWorkerMirroredStrategy.
type MultiWorkerOptions struct {
	// Config is the cluster and this process' task; nil reads TF_CONFIG
	// (TFConfigFromEnv), as Python's TFConfigClusterResolver does. Without
	// a cluster (no TF_CONFIG) the strategy is a one-worker
	// MirroredStrategy on Devices, as Python's falls back to local devices.
	Config *TFConfig
	// Devices are this worker's replicas, local names as for
	// NewMirroredStrategy ("/device:CPU:0", "GPU:1"); every worker must
	// list as many (Python's strategy makes the same assumption). None:
	// "/device:CPU:0".
	Devices []string
	// CollectiveTimeout bounds each collective op of a training step: a
	// step whose peers do not all take part within it (a worker died
	// before connecting, or hangs) fails with DeadlineExceeded instead of
	// waiting for ever. A peer whose process is gone fails the step at
	// once, its RPCs refused. 0 means 10 minutes, which a first step's
	// graph optimization or a large checkpoint written by the chief
	// between steps stays inside; negative means no timeout (Python's
	// default, which relies on its health checks instead).
	CollectiveTimeout time.Duration
	// HealthCheckInterval is how often, while Fit trains, this worker
	// dials the other tasks of the cluster: three failures in a row (a
	// peer whose process is gone refuses at once) fail the training step
	// naming the lost task, instead of waiting for CollectiveTimeout
	// (Python's strategy checks its peers' health for the same reason; see
	// WatchPeers). 0 means 5 seconds; negative turns the checks off.
	HealthCheckInterval time.Duration
}

// workerCluster is what a MirroredStrategy spanning workers adds: the
// cluster, this task's place in it, and its server.
type workerCluster struct {
	cfg     TFConfig
	server  *tfgo.Server
	workers int // the tasks that train: the chief, if any, and the workers
	rank    int // this task's index among them, the chief first
	timeout time.Duration
	health  time.Duration // HealthCheckInterval
}

// multiWorkerGroupKeys start far above the one-host strategies' keys, so
// that a one-host strategy made first in one process only does not shift
// the multi-worker keys the processes must agree on.
const multiWorkerGroupKeys = 1 << 20

// NewMultiWorkerMirroredStrategy is
// tf.distribute.MultiWorkerMirroredStrategy: synchronous data parallelism
// across the workers of a cluster (the chief, if TF_CONFIG names one, and
// the workers), each with one or more local replicas. Every worker runs
// the same program: it builds the same model and training graph on its own
// devices, and CollectiveReduceV2 over TensorFlow's gRPC runtime averages
// the gradients of every replica of every worker (a ring across the
// hosts; NCCL among a host's GPUs), so that all replicas apply the same
// update. keraslike's CompileOptions.Strategy takes it as it takes a
// one-host MirroredStrategy; Fit gives each worker its part of every
// global batch.
//
// It starts this task's TensorFlow server, as Python's strategy does, with
// the config MultiWorkerMirroredStrategy sets (TFConfig.ServerDef) and as
// many logical CPU devices as Devices name. TensorFlow cannot stop a
// started server, so a process has one, kept until it exits: a second
// strategy for the same task shares it, and one for another task is an
// error.
//
// Every worker must create its strategies, models and Compile calls in the
// same order: the collectives of the workers meet by group and instance
// keys handed out in that order, as Python's CollectiveKeys hands them out.
//
// A TF_CONFIG whose task is a "ps" or an "evaluator", or that names "ps"
// tasks, is refused: ParameterServerStrategy and side-car evaluation are
// not implemented.
func NewMultiWorkerMirroredStrategy(o MultiWorkerOptions) (*MirroredStrategy, error) {
	var cfg TFConfig
	if o.Config != nil {
		cfg = *o.Config
	} else {
		var ok bool
		var err error
		if cfg, ok, err = TFConfigFromEnv(); err != nil {
			return nil, fmt.Errorf("multi-worker strategy: %w", err)
		} else if !ok {
			cfg = TFConfig{}
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("multi-worker strategy: %w", err)
	}
	st, err := NewMirroredStrategy(o.Devices...)
	if err != nil {
		return nil, fmt.Errorf("multi-worker strategy: %w", err)
	}
	if len(cfg.Cluster) == 0 {
		return st, nil
	}
	if len(cfg.Cluster["ps"]) > 0 {
		return nil, errors.New("multi-worker strategy: the cluster has \"ps\" tasks: ParameterServerStrategy is not implemented (MultiWorkerMirroredStrategy's cluster has a chief and workers only)")
	}
	switch cfg.Task.Type {
	case "chief", "worker":
	case "":
		return nil, errors.New("multi-worker strategy: the TF_CONFIG has a cluster but no task (task.type and task.index)")
	default:
		return nil, fmt.Errorf("multi-worker strategy: task type %q does not train (only the chief and the workers do); an evaluator is not implemented", cfg.Task.Type)
	}
	c := &workerCluster{cfg: cfg, workers: len(cfg.Cluster["chief"]) + len(cfg.Cluster["worker"]), timeout: o.CollectiveTimeout}
	if cfg.Task.Type == "worker" {
		c.rank = len(cfg.Cluster["chief"]) + cfg.Task.Index
	}
	if c.timeout == 0 {
		c.timeout = 10 * time.Minute
	}
	if c.health = o.HealthCheckInterval; c.health == 0 {
		c.health = 5 * time.Second
	}
	base := &cpb.ConfigProto{}
	if so := st.SessionOptions(); len(so.DeviceCount) > 0 {
		base.DeviceCount = so.DeviceCount
	}
	if c.server, err = processServer(cfg, base); err != nil {
		return nil, fmt.Errorf("multi-worker strategy: %w", err)
	}
	prefix := c.taskName()
	for i, d := range st.devices {
		st.devices[i] = prefix + d
	}
	st.cluster = c
	st.groupKey = multiWorkerGroupKeys + nextMultiWorkerKey.Add(1)
	return st, nil
}

// nextMultiWorkerKey numbers the multi-worker strategies of the process.
var nextMultiWorkerKey atomic.Int32

// taskName is "/job:<type>/replica:0/task:<index>", the prefix of this
// task's devices.
func (c *workerCluster) taskName() string {
	return fmt.Sprintf("/job:%s/replica:0/task:%d", c.cfg.Task.Type, c.cfg.Task.Index)
}

// theServer is the process' one server (see NewMultiWorkerMirroredStrategy).
var theServer struct {
	sync.Mutex
	def    *cpb.ServerDef
	server *tfgo.Server
}

// processServer starts the server of cfg's task with base as its default
// session config, or returns the one started before for the same
// ServerDef.
func processServer(cfg TFConfig, base *cpb.ConfigProto) (*tfgo.Server, error) {
	def, err := cfg.ServerDef(base)
	if err != nil {
		return nil, err
	}
	theServer.Lock()
	defer theServer.Unlock()
	if theServer.server != nil {
		if proto.Equal(theServer.def, def) {
			return theServer.server, nil
		}
		return nil, fmt.Errorf("this process already runs the server of /job:%s/task:%d (%s), which TensorFlow cannot stop; a process serves one task with one set of devices",
			theServer.def.GetJobName(), theServer.def.GetTaskIndex(), theServer.server.Target())
	}
	s, err := startServer(cfg, def)
	if err != nil {
		return nil, err
	}
	theServer.def, theServer.server = def, s
	return s, nil
}

// IsChief reports whether this process is the cluster's chief: the "chief"
// task if the cluster has one, else worker 0 (multi_worker_util.is_chief);
// true for a one-host strategy. The chief writes the checkpoints,
// TensorBoard events and exports; the other workers write nothing there.
func (s *MirroredStrategy) IsChief() bool {
	return s == nil || s.cluster == nil || s.cluster.rank == 0
}

// NumWorkers is the number of processes training together: 1 for a
// one-host strategy.
func (s *MirroredStrategy) NumWorkers() int {
	if s == nil || s.cluster == nil {
		return 1
	}
	return s.cluster.workers
}

// WorkerIndex is this process' index among the workers, the chief first:
// which part of every global batch it trains on. 0 for a one-host
// strategy.
func (s *MirroredStrategy) WorkerIndex() int {
	if s == nil || s.cluster == nil {
		return 0
	}
	return s.cluster.rank
}

// NumReplicasInSync is the number of replicas of every worker together
// (Python's num_replicas_in_sync): the number of parts a global batch is
// split into. NumReplicas is this worker's.
func (s *MirroredStrategy) NumReplicasInSync() int {
	return s.NumReplicas() * s.NumWorkers()
}

// Target is the session target of this task's server ("grpc://host:port"),
// "" for a one-host strategy.
func (s *MirroredStrategy) Target() string {
	if s == nil || s.cluster == nil {
		return ""
	}
	return s.cluster.server.Target()
}

// CheckPeers dials every other training task of the cluster once (within
// timeout each) and returns an error naming those that do not answer; nil
// when all do, or for a one-host strategy. A training step that failed on
// a collective uses it to say which worker was lost.
func (s *MirroredStrategy) CheckPeers(timeout time.Duration) error {
	if s == nil || s.cluster == nil {
		return nil
	}
	var lost []string
	for _, job := range []string{"chief", "worker"} {
		for i, addr := range s.cluster.cfg.Cluster[job] {
			if job == s.cluster.cfg.Task.Type && i == s.cluster.cfg.Task.Index {
				continue
			}
			conn, err := net.DialTimeout("tcp", addr, timeout)
			if err != nil {
				lost = append(lost, fmt.Sprintf("/job:%s/replica:0/task:%d (%s)", job, i, addr))
				continue
			}
			conn.Close()
		}
	}
	if len(lost) == 0 {
		return nil
	}
	return fmt.Errorf("lost contact with %s", strings.Join(lost, ", "))
}

// collectiveTimeout is the timeout_seconds of the strategy's collectives:
// 0 (none) on one host, where every replica is in the process.
func (s *MirroredStrategy) collectiveTimeout() float32 {
	if s.cluster == nil || s.cluster.timeout < 0 {
		return 0
	}
	return float32(s.cluster.timeout.Seconds())
}

// BatchBroadcast gives every replica, of every worker, the value the
// chief's replica 0 has of each tensor: perReplica[i][k] is tensor i on
// replica k of this worker, and the result's [i][k] is the chief's, on
// replica k's device. It is how the workers start from the chief's
// weights and optimizer state (Python's strategy broadcasts the initial
// values the same way). It is an all-reduce sum to which only the chief's
// replica 0 adds its value and every other replica zeros: x + 0 is x,
// so every copy is bit for bit the chief's, for any dtype the collective
// adds (floats and integers).
func (s *MirroredStrategy) BatchBroadcast(sc *tfgo.Scope, perReplica [][]tfgo.Output) [][]tfgo.Output {
	if sc.Err() != nil {
		return nil
	}
	masked := make([][]tfgo.Output, len(perReplica))
	for i, vals := range perReplica {
		masked[i] = make([]tfgo.Output, len(vals))
		for k, v := range vals {
			if v.Op == nil || (k == 0 && s.IsChief()) {
				masked[i][k] = v
				continue
			}
			ds := sc.WithDevice(s.devices[k]).SubScope(fmt.Sprintf("broadcast_mask_%d", k))
			masked[i][k] = tfgo.ZerosLike(ds, v)
		}
	}
	return s.batchAllReduce(sc, masked, "Id")
}

// PeerWatch is a running health check of a multi-worker strategy's peers
// (WatchPeers). Its methods work on a nil PeerWatch, which never fires.
type PeerWatch struct {
	done, lost chan struct{}
	stop       sync.Once
	err        error // set before lost is closed
}

// WatchPeers checks the other tasks' health every HealthCheckInterval
// until Stop (nil for a one-host strategy or with the checks off): when a
// peer fails three checks in a row, Lost is closed and Err names it.
//
// TensorFlow's graph sessions cannot cancel a step, and a collective
// waiting for a dead peer's part fails only at CollectiveTimeout; Fit
// stops waiting for such a step when the watch fires and returns the
// error at once, leaving the step to end in TensorFlow at its timeout.
// The process is then expected to exit, as Python's workers do when a
// peer is lost (the session cannot be closed while the step runs).
func (s *MirroredStrategy) WatchPeers() *PeerWatch {
	if s == nil || s.cluster == nil || s.cluster.health < 0 {
		return nil
	}
	w := &PeerWatch{done: make(chan struct{}), lost: make(chan struct{})}
	go func() {
		tick := time.NewTicker(s.cluster.health)
		defer tick.Stop()
		failures := 0
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			err := s.CheckPeers(min(s.cluster.health, 5*time.Second))
			if err == nil {
				failures = 0
				continue
			}
			if failures++; failures == 3 {
				w.err = err
				close(w.lost)
				return
			}
		}
	}()
	return w
}

// Lost is closed when a peer is lost (never for a nil PeerWatch).
func (w *PeerWatch) Lost() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.lost
}

// Err names the lost peers once Lost is closed; nil before.
func (w *PeerWatch) Err() error {
	if w == nil {
		return nil
	}
	select {
	case <-w.lost:
		return w.err
	default:
		return nil
	}
}

// Stop ends the checks; it is safe to call more than once.
func (w *PeerWatch) Stop() {
	if w != nil {
		w.stop.Do(func() { close(w.done) })
	}
}

// packedAllReduce is batchAllReduce across workers: the tensors of each
// dtype whose shapes are known are flattened and concatenated into one
// tensor per replica, all-reduced by one collective, and split back, as
// Python's strategy packs its all-reduces (cross_device_utils'
// batch_all_reduce). Each element is reduced as it would be alone, so the
// result is the same; what changes is the number of collectives, each a
// round of RPCs between the hosts: one per dtype instead of one per
// gradient.
func (s *MirroredStrategy) packedAllReduce(sc *tfgo.Scope, perReplica [][]tfgo.Output, finalOp string) [][]tfgo.Output {
	if sc.Err() != nil {
		return nil
	}
	n := len(s.devices)
	out := make([][]tfgo.Output, len(perReplica))
	var alone []int                    // tensors reduced one by one
	packs := map[tfgo.DataType][]int{} // the others, by dtype
	var order []tfgo.DataType
	shapes := make([][]int64, len(perReplica))
	for i, vals := range perReplica {
		if len(vals) != n || vals[0].Op == nil {
			alone = append(alone, i)
			continue
		}
		sh, err := vals[0].Shape()
		known := err == nil && !sh.UnknownRank
		for _, d := range sh.Dims {
			known = known && d >= 0
		}
		if !known {
			alone = append(alone, i)
			continue
		}
		shapes[i] = sh.Dims
		dt := vals[0].DataType()
		if _, ok := packs[dt]; !ok {
			order = append(order, dt)
		}
		packs[dt] = append(packs[dt], i)
	}
	kept := order[:0]
	for _, dt := range order {
		if len(packs[dt]) == 1 { // nothing to pack it with
			alone = append(alone, packs[dt][0])
			continue
		}
		kept = append(kept, dt)
	}
	order = kept
	var flat [][]tfgo.Output // one packed tensor per dtype, per replica
	for _, dt := range order {
		row := make([]tfgo.Output, n)
		for k := range n {
			ps := sc.WithDevice(s.devices[k]).SubScope(fmt.Sprintf("pack_%d", k))
			parts := make([]tfgo.Output, len(packs[dt]))
			for j, i := range packs[dt] {
				parts[j] = tfgo.Reshape(ps, perReplica[i][k], tfgo.Const(ps, []int64{-1}))
			}
			row[k] = tfgo.ConcatV2(ps, parts, tfgo.Const(ps, int32(0)))
		}
		flat = append(flat, row)
	}
	for _, i := range alone {
		flat = append(flat, perReplica[i])
	}
	red := s.batchCollective(sc, flat, "all_reduce", s.reduceOp(finalOp))
	if red == nil {
		return nil
	}
	for p, dt := range order {
		idx := packs[dt]
		sizes := make([]int64, len(idx))
		for j, i := range idx {
			sizes[j] = 1
			for _, d := range shapes[i] {
				sizes[j] *= d
			}
			out[i] = make([]tfgo.Output, n)
		}
		for k := range n {
			us := sc.WithDevice(s.devices[k]).SubScope(fmt.Sprintf("unpack_%d", k))
			parts := tfgo.SplitV(us, red[p][k], tfgo.Const(us, sizes), tfgo.Const(us, int32(0)), int64(len(idx)))
			for j, i := range idx {
				out[i][k] = tfgo.Reshape(us, parts[j], tfgo.Const(us, shapes[i]))
			}
		}
	}
	for j, i := range alone {
		out[i] = red[len(order)+j]
	}
	if sc.Err() != nil {
		return nil
	}
	return out
}
