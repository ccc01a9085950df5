package distribute

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gotf/gotf/tfgo"
)

// MirroredStrategy is tf.distribute.MirroredStrategy: synchronous data
// parallelism on the devices of one host (NewMirroredStrategy), or of
// every worker of a cluster (NewMultiWorkerMirroredStrategy, Python's
// MultiWorkerMirroredStrategy). Every replica holds a copy of
// the trainable weights on its device and runs the forward and backward
// pass on its part of the global batch; the gradients are averaged across
// replicas with an all-reduce, and every replica applies the same update,
// so that the copies stay equal.
//
// The strategy owns the device list and the keys of its collectives; the
// model side (the hidden copies, the split batch, the update on every
// replica) is keraslike's CompileOptions.Strategy.
type MirroredStrategy struct {
	devices []string // canonical "/device:TYPE:N", in replica order
	kind    string   // the devices' type: "CPU", "GPU"
	// groupKey names the strategy's device set to the collective runtime;
	// one per strategy, as Python's CollectiveAllReduce takes one per
	// CollectiveKeys.
	groupKey int32
	mu       sync.Mutex
	instance int32 // the last instance key handed out
	opts     MirroredOptions
	// cluster: the workers the strategy spans (NewMultiWorkerMirroredStrategy);
	// nil on one host.
	cluster *workerCluster
}

// nextGroupKey hands out group keys process-wide: two strategies used in
// one session must not share a key, or the runtime would mix their groups.
var nextGroupKey atomic.Int32

// deviceName matches the local device names TensorFlow accepts:
// "/device:CPU:0", "/cpu:0", "CPU:0", "/job:localhost/replica:0/task:0/device:GPU:1".
var deviceName = regexp.MustCompile(`^(?:/job:localhost(?:/replica:0)?(?:/task:0)?)?/?(?:device:)?([A-Za-z][A-Za-z_]*):([0-9]+)$`)

// NewMirroredStrategy returns a strategy with one replica per device, in
// the given order; replica 0's device holds the weights a model saves.
// Device names are local TensorFlow names ("/device:CPU:1", "/gpu:0",
// "GPU:0") of one type; they are kept in the canonical form "/device:GPU:0".
//
// With no devices the strategy has one replica on "/device:CPU:0".
// Python's default is every GPU, else the CPU; here the default does not
// depend on the host, so that a program behaves the same where it is
// built and where it runs, and more replicas are asked for by name (on a
// CPU host, logical CPUs: "/device:CPU:0", "/device:CPU:1", which
// SessionOptions makes exist).
//
// Duplicate devices, malformed names, devices of two types and remote
// devices (for training across hosts see NewMultiWorkerMirroredStrategy)
// are errors naming the device. Whether a device exists is known only to a session: see
// CheckDevices.
func NewMirroredStrategy(devices ...string) (*MirroredStrategy, error) {
	if len(devices) == 0 {
		devices = []string{"/device:CPU:0"}
	}
	s := &MirroredStrategy{}
	seen := map[string]string{}
	for _, d := range devices {
		m := deviceName.FindStringSubmatch(strings.TrimSpace(d))
		if m == nil {
			if strings.HasPrefix(d, "/job:") {
				return nil, fmt.Errorf("mirrored strategy: device %q is not on this host (/job:localhost); training across hosts is NewMultiWorkerMirroredStrategy's", d)
			}
			return nil, fmt.Errorf("mirrored strategy: malformed device name %q (want e.g. \"/device:CPU:0\" or \"/device:GPU:1\")", d)
		}
		kind := strings.ToUpper(m[1])
		idx, err := strconv.ParseInt(m[2], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("mirrored strategy: malformed device index in %q", d)
		}
		c := fmt.Sprintf("/device:%s:%d", kind, idx)
		if prev, dup := seen[c]; dup {
			return nil, fmt.Errorf("mirrored strategy: device %s given twice (%q and %q)", c, prev, d)
		}
		seen[c] = d
		if s.kind == "" {
			s.kind = kind
		} else if s.kind != kind {
			return nil, fmt.Errorf("mirrored strategy: devices of two types (%s and %s): replicas must be on devices of one type", s.devices[0], c)
		}
		s.devices = append(s.devices, c)
	}
	s.groupKey = nextGroupKey.Add(1)
	return s, nil
}

// Devices lists this process' replicas' devices in canonical form,
// replica 0 first; across workers they carry the task
// ("/job:worker/replica:0/task:1/device:CPU:0").
func (s *MirroredStrategy) Devices() []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s.devices...)
}

// NumReplicas is the number of replicas (devices) of this process; 0 for a
// nil strategy. Across workers, see NumReplicasInSync.
func (s *MirroredStrategy) NumReplicas() int {
	if s == nil {
		return 0
	}
	return len(s.devices)
}

// SessionOptions are the session options the strategy's devices need: on
// CPUs, DeviceCount CPU = the highest index + 1, which makes logical CPU
// devices exist (the way to test multi-device code on a host with one
// CPU device); on GPUs, none (the session sees every visible GPU). Across
// workers, also the Target of this task's server and the Config
// MultiWorkerMirroredStrategy gives a worker's sessions
// (TFConfig.SessionConfig: the collective group leader, and device filters
// that keep the session to this task's devices).
func (s *MirroredStrategy) SessionOptions() tfgo.SessionOptions {
	if s == nil {
		return tfgo.SessionOptions{}
	}
	var o tfgo.SessionOptions
	if s.cluster != nil {
		o.Target = s.cluster.server.Target()
		o.Config = s.cluster.cfg.SessionConfig(nil)
	}
	if s.kind != "CPU" {
		return o
	}
	n := int32(0)
	for _, d := range s.devices {
		i, _ := strconv.ParseInt(d[strings.LastIndexByte(d, ':')+1:], 10, 32)
		n = max(n, int32(i)+1)
	}
	o.DeviceCount = map[string]int32{"CPU": n}
	return o
}

// CheckDevices reports the first of the strategy's devices missing from
// available (a session's ListDevices), naming it and listing the devices
// there are.
func (s *MirroredStrategy) CheckDevices(available []tfgo.Device) error {
	if s == nil {
		return errors.New("mirrored strategy: nil strategy (make one with NewMirroredStrategy)")
	}
	have := map[string]bool{}
	var names []string
	for _, d := range available {
		c := d.Name
		if i := strings.Index(c, "/device:"); i >= 0 && s.cluster == nil {
			c = c[i:]
		}
		have[c] = true
		names = append(names, c)
	}
	for _, d := range s.devices {
		if !have[d] {
			return fmt.Errorf("mirrored strategy: device %s does not exist in the session (available: %s)", d, strings.Join(names, ", "))
		}
	}
	return nil
}

// communicationHint picks the collective implementation: NCCL on GPUs,
// which is what Python's MirroredStrategy uses there (NcclAllReduce, or
// CollectiveReduceV2 with this hint), and the runtime's ring all-reduce
// ("auto") elsewhere.
func (s *MirroredStrategy) communicationHint() string {
	if s.kind == "GPU" {
		return "nccl"
	}
	return "auto"
}

// nextInstance hands out a fresh instance key: every collective of a
// group needs its own, as Python's CollectiveKeys gives them.
func (s *MirroredStrategy) nextInstance() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instance++
	return s.instance
}

// AllReduceMean averages values across replicas: values[k] is replica k's
// tensor (same dtype and shape on every replica), and the result's k-th
// element is the mean, computed on replica k's device. See BatchAllReduceMean.
func (s *MirroredStrategy) AllReduceMean(sc *tfgo.Scope, values []tfgo.Output) []tfgo.Output {
	out := s.BatchAllReduceMean(sc, [][]tfgo.Output{values})
	if out == nil {
		return nil
	}
	return out[0]
}

// BatchAllReduceMean averages several tensors across replicas:
// perReplica[i][k] is tensor i of replica k (a gradient), and the result
// has the same layout, each mean on its replica's device. A tensor whose
// every replica's Output is the zero Output (a weight without gradient)
// stays so. Errors (a wrong replica count, a zero Output on some replicas
// only) stick to sc.
//
// Each tensor is one CollectiveReduceV2 (merge Add, final Div: the mean)
// per device, with the strategy's group key and its own instance key.
// CollectiveReduceV2 takes its group and keys as inputs and runs in a
// plain TF1 session on any device type, which is what this binding drives;
// on GPUs the "nccl" hint makes the runtime use NCCL, as NcclAllReduce
// would in Python's graph-mode MirroredStrategy. The collectives of one
// device are chained in the order given, so every device launches them in
// the same order: NCCL deadlocks otherwise, and it keeps the ring's
// threads from waiting on each other's instances on a small CPU pool.
// Give gradients in the order the backward pass produces them (the last
// layer's first), so the chain does not wait for the slowest.
func (s *MirroredStrategy) BatchAllReduceMean(sc *tfgo.Scope, perReplica [][]tfgo.Output) [][]tfgo.Output {
	return s.batchAllReduce(sc, perReplica, "Div")
}

// batchAllReduce is BatchAllReduceMean with CollectiveReduceV2's final
// op: "Div" for the mean, "Id" for the sum.
func (s *MirroredStrategy) batchAllReduce(sc *tfgo.Scope, perReplica [][]tfgo.Output, finalOp string) [][]tfgo.Output {
	if s != nil && s.cluster != nil {
		return s.packedAllReduce(sc, perReplica, finalOp)
	}
	return s.batchCollective(sc, perReplica, "all_reduce", s.reduceOp(finalOp))
}

// reduceOp makes one device's CollectiveReduceV2 with merge Add and the
// final op given, for batchCollective.
func (s *MirroredStrategy) reduceOp(finalOp string) func(ds *tfgo.Scope, v, n, group, inst tfgo.Output) tfgo.Output {
	return func(ds *tfgo.Scope, v, n, group, inst tfgo.Output) tfgo.Output {
		return tfgo.CollectiveReduceV2(ds, v, n, group, inst, nil, "Add", finalOp, tfgo.CollectiveReduceV2CommunicationHint(s.communicationHint()),
			tfgo.CollectiveReduceV2TimeoutSeconds(s.collectiveTimeout()))
	}
}

// batchCollective adds one collective per tensor and device: perReplica[i]
// holds tensor i's value on each replica, and collective makes the op on
// one device given the group size, group key and the tensor's instance
// key. Each device's collectives are chained in the order given, since
// NCCL deadlocks when devices launch collectives in different orders. A
// tensor that is the zero Output on every replica stays so; one missing on
// some replicas only is an error.
func (s *MirroredStrategy) batchCollective(sc *tfgo.Scope, perReplica [][]tfgo.Output, what string,
	collective func(ds *tfgo.Scope, v, n, group, inst tfgo.Output) tfgo.Output) [][]tfgo.Output {
	if sc.Err() != nil {
		return nil
	}
	if s == nil || len(s.devices) == 0 {
		sc.UpdateErr(what, errors.New("mirrored strategy: nil strategy (make one with NewMirroredStrategy)"))
		return nil
	}
	n := len(s.devices)
	group := int32(s.NumReplicasInSync())
	out := make([][]tfgo.Output, len(perReplica))
	last := make([]*tfgo.Operation, n) // each device's previous collective
	for i, vals := range perReplica {
		if len(vals) != n {
			sc.UpdateErr(what, fmt.Errorf("mirrored strategy: tensor %d has %d replica values, the strategy %d replicas", i, len(vals), n))
			return nil
		}
		missing := 0
		for _, v := range vals {
			if v.Op == nil {
				missing++
			}
		}
		out[i] = make([]tfgo.Output, n)
		if missing == n {
			continue
		}
		if missing > 0 {
			sc.UpdateErr(what, fmt.Errorf("mirrored strategy: tensor %d is missing on %d of %d replicas", i, missing, n))
			return nil
		}
		if group == 1 {
			out[i][0] = vals[0]
			continue
		}
		inst := s.nextInstance()
		for k, v := range vals {
			ds := sc.WithDevice(s.devices[k])
			if last[k] != nil {
				ds = ds.WithControlDependencies(last[k])
			}
			ds = ds.SubScope(fmt.Sprintf("%s_%d", what, k))
			r := collective(ds, v, tfgo.Const(ds, group), tfgo.Const(ds, s.groupKey), tfgo.Const(ds, inst))
			out[i][k] = r
			last[k] = r.Op
		}
	}
	if sc.Err() != nil {
		return nil
	}
	return out
}
