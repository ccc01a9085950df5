package runner

import (
	ndpb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
)

// pythonOnlyOps are the ops whose kernels only Python TensorFlow registers:
// they call back into the Python interpreter that built the graph. The C++
// runtime knows the ops but has no kernel for them.
var pythonOnlyOps = map[string]string{
	"EagerPyFunc":     "tf.py_function",
	"PyFunc":          "tf.numpy_function (or tf.compat.v1.py_func)",
	"PyFuncStateless": "tf.numpy_function (or tf.compat.v1.py_func)",
}

// pythonOnlyOp returns the first Python-only op (pythonOnlyOps) that the
// tensors outputs ("op:index") need, in the graph or in the functions it
// calls, and where it is ("" if none).
//
// Such a signature is refused before it runs, not only because it cannot
// work: the run's error comes from inside PartitionedCallOp, which reports
// the failed instantiation while still holding its kernel's lock, and a
// session deleted right after the failed run (Close after an error) frees
// that lock under the unlocking thread ("UnlockSlow is confused", SIGABRT
// or SIGSEGV), as TestExternalModels' py_function case showed about once
// in six runs.
func pythonOnlyOp(ix *graphIndex, outputs []string) (op, where string) {
	roots := make([]string, 0, len(outputs))
	for _, o := range outputs {
		name, _, _ := parseInput(o)
		roots = append(roots, name)
	}
	keep, err := ix.ancestors(roots)
	if err != nil {
		return "", ""
	}
	var nodes []*ndpb.NodeDef
	for _, n := range ix.gd.GetNode() {
		if !keep[n.GetName()] {
			continue
		}
		if _, ok := pythonOnlyOps[n.GetOp()]; ok {
			return n.GetOp(), "node " + n.GetName()
		}
		nodes = append(nodes, n)
	}
	for _, f := range pruneLibrary(ix.gd.GetLibrary(), nodes).GetFunction() {
		for _, n := range f.GetNodeDef() {
			if _, ok := pythonOnlyOps[n.GetOp()]; ok {
				return n.GetOp(), "function " + f.GetSignature().GetName()
			}
		}
	}
	return "", ""
}
