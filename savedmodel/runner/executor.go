package runner

import (
	"fmt"
	"strings"
	"sync"

	"github.com/gotf/gotf/tfgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// singleThreaded is TensorFlow's executor that runs a step's kernels one
// after another on the calling thread; each kernel still splits its work
// over the intra-op pool. For a serving graph (a chain of matmuls and
// element-wise ops, little to run side by side) it drops the inter-op
// scheduling: see LoadOptions.SingleThreadedExecutor for what it was
// measured to gain.
const singleThreaded = "SINGLE_THREADED_EXECUTOR"

// unsupportedBySingleThreaded are op types the single-threaded executor
// cannot run (TensorFlow's single_threaded_executor.h: no control flow, no
// partitioned graphs, no reference tensors, no asynchronous kernels) or
// that become such ops in the session (functional control flow is lowered
// to Switch/Merge; a function call left as a call is an asynchronous kernel).
var unsupportedBySingleThreaded = map[string]bool{
	"Switch": true, "RefSwitch": true, "_SwitchN": true, "Merge": true, "RefMerge": true,
	"Enter": true, "RefEnter": true, "Exit": true, "RefExit": true,
	"NextIteration": true, "RefNextIteration": true, "LoopCond": true, "ControlTrigger": true,
	"If": true, "StatelessIf": true, "While": true, "StatelessWhile": true, "Case": true, "StatelessCase": true,
	"_Send": true, "_Recv": true, "_HostSend": true, "_HostRecv": true, "Send": true, "Recv": true,
	"VariableV2": true, "Variable": true, "TemporaryVariable": true,
	"RemoteCall": true, "MapDefun": true,
}

// singleThreadedFits reports whether every op of the meta graph, its
// function library included, can run on the single-threaded executor, and
// none of them asks for a device other than the CPU.
func singleThreadedFits(meta *cpb.MetaGraphDef) bool {
	ok := func(op, device string) bool {
		d := strings.ToUpper(device)
		return !unsupportedBySingleThreaded[op] && (d == "" || strings.Contains(d, "CPU"))
	}
	g := meta.GetGraphDef()
	for _, n := range g.GetNode() {
		if !ok(n.GetOp(), n.GetDevice()) {
			return false
		}
	}
	for _, f := range g.GetLibrary().GetFunction() {
		// A call the session cannot inline stays an asynchronous kernel.
		for _, k := range []string{"_noinline", "_XlaMustCompile"} {
			if f.GetAttr()[k].GetB() {
				return false
			}
		}
		for _, n := range f.GetNodeDef() {
			if !ok(n.GetOp(), n.GetDevice()) {
				return false
			}
		}
	}
	return true
}

// cpuOnly reports whether the process's sessions see CPU devices only:
// with a GPU, graphs are partitioned, which the single-threaded executor
// cannot run. The probe session is made with the caller's options:
// TensorFlow sizes its process-wide thread pools from the first sessions,
// and a probe with default options would size them for the model that
// asked.
func cpuOnly(o tfgo.SessionOptions) bool {
	cpuOnlyOnce.Do(func() {
		sess, err := tfgo.NewSession(tfgo.NewScope(), o)
		if err != nil {
			return
		}
		defer sess.Close()
		devs, err := sess.ListDevices()
		if err != nil {
			return
		}
		for _, d := range devs {
			if d.Type != "CPU" {
				return
			}
		}
		cpuOnlyResult = true
	})
	return cpuOnlyResult
}

var (
	cpuOnlyOnce   sync.Once
	cpuOnlyResult bool
)

// withExecutor returns the session options a model is loaded with: o,
// with the single-threaded executor when single is set, or an error when
// the model, the options or the process do not allow it.
func withExecutor(o tfgo.SessionOptions, single bool, meta *cpb.MetaGraphDef) (tfgo.SessionOptions, error) {
	if !single {
		return o, nil
	}
	why := ""
	switch {
	case o.XLA:
		why = "Session.XLA is set (XLA clusters run as asynchronous kernels)"
	case o.Target != "":
		why = "Session.Target is set (a remote session)"
	case len(o.DeviceCount) > 0 || len(o.Config.GetDeviceCount()) > 0:
		why = "a device count is set (partitioned graphs)"
	case o.Config.GetExperimental().GetExecutorType() != "":
		why = "Session.Config names an executor already"
	case !singleThreadedFits(meta):
		why = "the graph has control flow, reference variables, uninlinable calls or non-CPU devices"
	case !cpuOnly(o):
		why = "the process has devices other than the CPU (partitioned graphs)"
	}
	if why != "" {
		return o, fmt.Errorf("SingleThreadedExecutor: %w: %s", ErrUnsupported, why)
	}
	c := &cpb.ConfigProto{}
	if o.Config != nil {
		c = proto.Clone(o.Config).(*cpb.ConfigProto)
	}
	if c.Experimental == nil {
		c.Experimental = &cpb.ConfigProto_Experimental{}
	}
	c.Experimental.ExecutorType = singleThreaded
	o.Config = c
	return o, nil
}
