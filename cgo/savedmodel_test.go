package cgo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// writeSavedModel builds y = x·w with a resource variable w, saves w with
// SaveV2 run in a session into dir/variables/variables, and writes
// dir/saved_model.pb: the graph, a SaverDef naming its restore op and a
// "serving_default" signature. It returns the value x·w the session gave.
func writeSavedModel(t *testing.T, dir string) []float32 {
	t.Helper()
	g := NewGraph()
	defer g.Close()
	op := func(b *OpBuilder) *Operation {
		o, err := b.Finish()
		require.NoError(t, err)
		return o
	}
	str := func(name string, v ...string) *Operation {
		bs := make([][]byte, len(v))
		for i, s := range v {
			bs[i] = []byte(s)
		}
		dims := []int64{int64(len(v))}
		if name == "save/Const" {
			dims = nil
		}
		tn, err := NewStringTensor(dims, bs)
		require.NoError(t, err)
		defer tn.Close()
		return op(g.NewOperation("Const", name).SetAttr("dtype", dtypes.String).SetAttr("value", tn))
	}
	x := op(g.NewOperation("Placeholder", "x").SetAttr("dtype", dtypes.Float).SetAttr("shape", MakeShape(-1, 2)))
	w := op(g.NewOperation("VarHandleOp", "w").SetAttr("dtype", dtypes.Float).SetAttr("shape", MakeShape(2, 2)).SetAttr("shared_name", "w"))
	initial := constOp(t, g, "w/initial", []int64{2, 2}, 1, 2, 3, 4)
	assign := op(g.NewOperation("AssignVariableOp", "w/Assign").AddInput(w.Output(0)).AddInput(initial.Output(0)).SetAttr("dtype", dtypes.Float))
	read := op(g.NewOperation("ReadVariableOp", "w/Read").AddInput(w.Output(0)).SetAttr("dtype", dtypes.Float))
	y := op(g.NewOperation("MatMul", "y").AddInput(x.Output(0)).AddInput(read.Output(0)))

	filename := str("save/Const", "model")
	names, slices := str("save/names", "w"), str("save/slices", "")
	save := op(g.NewOperation("SaveV2", "save/SaveV2").AddInput(filename.Output(0)).AddInput(names.Output(0)).
		AddInput(slices.Output(0)).AddInputList([]Output{read.Output(0)}))
	restore := op(g.NewOperation("RestoreV2", "save/RestoreV2").AddInput(filename.Output(0)).AddInput(names.Output(0)).
		AddInput(slices.Output(0)).SetAttr("dtypes", []DataType{dtypes.Float}))
	restoreAssign := op(g.NewOperation("AssignVariableOp", "save/Assign").AddInput(w.Output(0)).AddInput(restore.Output(0)).SetAttr("dtype", dtypes.Float))
	op(g.NewOperation("NoOp", "save/restore_all").AddControlInput(restoreAssign))

	s, err := NewSession(g, nil)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Run(nil, nil, []*Operation{assign})
	require.NoError(t, err)
	prefix, err := NewStringTensor(nil, [][]byte{[]byte(filepath.Join(dir, "variables", "variables"))})
	require.NoError(t, err)
	_, err = s.Run(map[Output]*Tensor{filename.Output(0): prefix}, nil, []*Operation{save})
	require.NoError(t, err)
	xv, err := NewTensor(dtypes.Float, []int64{1, 2}, f32bytes(1, 1))
	require.NoError(t, err)
	out, err := s.Run(map[Output]*Tensor{x.Output(0): xv}, []Output{y.Output(0)}, nil)
	require.NoError(t, err)

	gd, err := g.GraphDef()
	require.NoError(t, err)
	info := func(name string) *cpb.TensorInfo {
		return &cpb.TensorInfo{Encoding: &cpb.TensorInfo_Name{Name: name}, Dtype: 1} // DT_FLOAT
	}
	sm := &cpb.SavedModel{SavedModelSchemaVersion: 1, MetaGraphs: []*cpb.MetaGraphDef{{
		MetaInfoDef: &cpb.MetaGraphDef_MetaInfoDef{Tags: []string{"serve"}},
		GraphDef:    gd,
		SaverDef:    &cpb.SaverDef{FilenameTensorName: "save/Const:0", RestoreOpName: "save/restore_all", Version: cpb.SaverDef_V2},
		SignatureDef: map[string]*cpb.SignatureDef{"serving_default": {
			Inputs:     map[string]*cpb.TensorInfo{"x": info("x:0")},
			Outputs:    map[string]*cpb.TensorInfo{"y": info("y:0")},
			MethodName: "tensorflow/serving/predict",
		}},
	}}}
	b, err := proto.Marshal(sm)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "saved_model.pb"), b, 0o644))
	return bytesf32(out[0].Data())
}

func TestLoadSavedModel(t *testing.T) {
	dir := t.TempDir()
	want := writeSavedModel(t, dir)

	s, mg, err := LoadSavedModel(dir, []string{"serve"}, nil)
	require.NoError(t, err)
	g := s.Graph()
	defer g.Close()
	defer s.Close()
	require.Equal(t, []string{"serve"}, mg.GetMetaInfoDef().GetTags())
	require.Equal(t, "y:0", mg.GetSignatureDef()["serving_default"].GetOutputs()["y"].GetName())
	require.NotNil(t, g.Operation("save/restore_all"))

	x, err := g.OutputByName("x:0")
	require.NoError(t, err)
	y, err := g.OutputByName("y:0")
	require.NoError(t, err)
	xv, err := NewTensor(dtypes.Float, []int64{1, 2}, f32bytes(1, 1))
	require.NoError(t, err)
	// The variable was restored from variables/ by the loader: no
	// initializer runs here.
	out, err := s.Run(map[Output]*Tensor{x: xv}, []Output{y}, nil)
	require.NoError(t, err)
	require.Equal(t, want, bytesf32(out[0].Data()))
}

func TestLoadSavedModelErrors(t *testing.T) {
	dir := t.TempDir()
	writeSavedModel(t, dir)

	_, _, err := LoadSavedModel(filepath.Join(dir, "nonexistent"), []string{"serve"}, nil)
	require.Error(t, err)
	require.Equal(t, NotFound, err.(*Error).Code)

	_, _, err = LoadSavedModel(dir, []string{"train"}, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "train")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "saved_model.pb"), []byte("\x0a\xff\xff\xff\x0f garbage"), 0o644))
	_, _, err = LoadSavedModel(dir, []string{"serve"}, nil)
	require.Error(t, err)
	t.Logf("corrupted saved_model.pb: %v", err)
}
