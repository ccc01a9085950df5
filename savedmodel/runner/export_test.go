package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// TestExportTransformerBlock exports a transformer block built in Go and
// checks that Python's loaders (TF2 tf.saved_model.load and the TF1
// loader), saved_model_cli and the C++ loader TensorFlow Serving uses all
// read it, and that every one of them computes what Go computes.
func TestExportTransformerBlock(t *testing.T) {
	b := newBlock(t)
	// One update first: the export must take the values in the session,
	// not the initializers'.
	_, err := b.sess.Run(nil, nil, b.train)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "block")
	require.NoError(t, Export(dir, b.s.Graph(), b.sess, b.signatures(), ExportOptions{}))

	x := tensor(t, b.randomInput(3, 1))
	goOut, err := b.sess.Run(map[tfgo.Output]any{b.x: x}, []tfgo.Output{b.y, b.probs})
	require.NoError(t, err)

	// The C++ loader, as TensorFlow Serving loads it (tag "serve").
	m, err := Load(dir)
	require.NoError(t, err)
	defer m.Close()
	sigs := m.Signatures()
	require.Len(t, sigs, 2)
	require.Equal(t, "attention", sigs[0].Name)
	require.Equal(t, "serving_default", sigs[1].Name)
	def := sigs[1]
	require.Equal(t, savedmodel.PredictMethodName, def.MethodName)
	require.Equal(t, []string{"x"}, def.InputNames())
	require.Equal(t, []string{"y"}, def.OutputNames())
	require.Equal(t, TensorInfo{Name: "x/Placeholder:0", DType: tfgo.Float, Shape: tfgo.MakeShape(-1, b.T, b.D)}, def.Inputs["x"])
	require.Equal(t, TensorInfo{Name: b.y.Name(), DType: tfgo.Float, Shape: tfgo.MakeShape(-1, b.T, b.D)}, def.Outputs["y"])
	require.Equal(t, tfgo.MakeShape(-1, b.T, b.T), sigs[0].Outputs["probs"].Shape)
	t.Logf("signatures:\n%s\n%s", sigs[0], sigs[1])

	out, err := m.Run(context.Background(), "serving_default", map[string]any{"x": x})
	require.NoError(t, err)
	closeTo(t, "C++ loader y", goOut[0], out["y"], 1e-5)
	out, err = m.Run(context.Background(), "attention", map[string]any{"x": b.randomInput(3, 1)})
	require.NoError(t, err)
	closeTo(t, "C++ loader probs", goOut[1], out["probs"], 1e-5)

	// saved_model_cli lists the signatures and the ops of the graph.
	cliTensors, cliOps := parseCLI(t, savedModelCLI(t, "show", "--dir", dir, "--all"))
	require.Equal(t, cliLines(m), cliTensors)
	var graphOps []string
	seen := map[string]bool{}
	for _, op := range m.Session().Graph().Operations() {
		if !seen[op.Type()] {
			seen[op.Type()] = true
			graphOps = append(graphOps, op.Type())
		}
	}
	sort.Strings(graphOps)
	require.Equal(t, graphOps, cliOps)
	t.Logf("saved_model_cli: %d signature tensors, %d op types", len(cliTensors), len(cliOps))

	// Python: TF2's tf.saved_model.load, and the TF1 loader in a session,
	// which also saves the restored variables through the SaverDef.
	ckpt := filepath.Join(t.TempDir(), "resaved")
	py := interop.Python(t, `
tf.get_logger().setLevel("ERROR")
d = inputs["dir"].item().decode()
m = tf.saved_model.load(d)
outputs["sigs"] = np.array(sorted(m.signatures.keys()), dtype=object)
r = m.signatures["serving_default"](x=tf.constant(inputs["x"]))
outputs["keys"] = np.array(sorted(r.keys()), dtype=object)
outputs["y2"] = r["y"]
outputs["probs2"] = m.signatures["attention"](x=tf.constant(inputs["x"]))["probs"]
g = tf.Graph()
with g.as_default(), tf.compat.v1.Session(graph=g) as s:
    mg = tf.compat.v1.saved_model.loader.load(s, ["serve"], d)
    sig = mg.signature_def["serving_default"]
    outputs["y1"] = s.run(sig.outputs["y"].name, {sig.inputs["x"].name: inputs["x"]})
    saver = tf.compat.v1.train.Saver(saver_def=mg.saver_def)
    saver.save(s, inputs["ckpt"].item().decode(), write_meta_graph=False, write_state=False)
`, map[string]*tfgo.Tensor{"dir": str(t, dir), "x": x, "ckpt": str(t, ckpt)})
	sigNames := stringsOf(t, py["sigs"])
	require.Equal(t, []string{"attention", "serving_default"}, sigNames)
	keys := stringsOf(t, py["keys"])
	require.Equal(t, []string{"y"}, keys)
	closeTo(t, "Python tf.saved_model.load y", goOut[0], py["y2"], 1e-5)
	closeTo(t, "Python tf.saved_model.load probs", goOut[1], py["probs2"], 1e-5)
	closeTo(t, "Python TF1 loader y", goOut[0], py["y1"], 1e-5)

	// What the graph holds: the inference ops, the variables' handles and
	// the saver; not the initializers, the labels, the loss or the update.
	sm, err := savedmodel.ReadSavedModel(dir)
	require.NoError(t, err)
	mg := sm.GetMetaGraphs()[0]
	require.Equal(t, []string{"serve"}, mg.GetMetaInfoDef().GetTags())
	nodes := map[string]string{}
	for _, n := range mg.GetGraphDef().GetNode() {
		nodes[n.GetName()] = n.GetOp()
	}
	for name, op := range nodes {
		require.NotContains(t, name, "Initializer", "%s (%s)", name, op)
		require.False(t, strings.HasPrefix(name, "labels") || strings.HasPrefix(name, "loss") || strings.HasPrefix(name, "train"), "%s (%s) is not needed", name, op)
		require.NotEqual(t, "AssignSubVariableOp", op, name)
	}
	for name, op := range map[string]string{
		"x/Placeholder": "Placeholder", "attention/query": "VarHandleOp", "save/Const": "PlaceholderWithDefault",
		"save/SaveV2": "SaveV2", "save/control_dependency": "Identity", "save/RestoreV2": "RestoreV2",
		"save/AssignVariableOp": "AssignVariableOp", "save/AssignVariableOp_10": "AssignVariableOp", "save/restore_all": "NoOp",
	} {
		require.Equal(t, op, nodes[name], name)
	}
	sd := mg.GetSaverDef()
	require.Equal(t, "save/Const:0", sd.GetFilenameTensorName())
	require.Equal(t, "save/control_dependency:0", sd.GetSaveTensorName())
	require.Equal(t, "save/restore_all", sd.GetRestoreOpName())
	t.Logf("exported graph: %d nodes (the Go graph has %d)", len(nodes), b.s.Graph().NumOperations())

	// variables/variables holds the session's values under the shared
	// names, and Python's Saver writes the same values back.
	var names []string
	for _, v := range tfgo.Variables(b.s) {
		names = append(names, v.Name())
	}
	sort.Strings(names)
	for _, prefix := range []string{savedmodel.VariablesPrefix(dir), ckpt} {
		r, err := savedmodel.OpenBundle(prefix)
		require.NoError(t, err)
		require.Equal(t, names, r.Names(), prefix)
		for _, v := range tfgo.Variables(b.s) {
			got, err := r.Read(v.Name())
			require.NoError(t, err)
			want, err := b.sess.Run(nil, []tfgo.Output{v.Value()})
			require.NoError(t, err)
			require.Equal(t, want[0].Data(), got.Data, "%s in %s", v.Name(), prefix)
		}
		r.Close()
	}
}

// TestExportChecksSignatures: a signature whose output needs a placeholder
// it does not feed, and other mistakes, are errors before anything is written.
func TestExportChecksSignatures(t *testing.T) {
	b := newBlock(t)
	base := t.TempDir()
	dir := filepath.Join(base, "m")
	for _, c := range []struct {
		name string
		sigs map[string]Signature
		want []string
	}{
		{"unfed placeholder", map[string]Signature{"train": {Inputs: map[string]tfgo.Output{"x": b.x}, Outputs: map[string]tfgo.Output{"loss": b.loss}}},
			[]string{`signature "train"`, `"labels/Placeholder"`, "not one of the signature's inputs"}},
		{"no outputs", map[string]Signature{"serving_default": {Inputs: map[string]tfgo.Output{"x": b.x}}},
			[]string{`signature "serving_default" has no outputs`}},
		{"no signatures", nil, []string{"no signature"}},
		{"zero output", map[string]Signature{"s": {Outputs: map[string]tfgo.Output{"y": {}}}},
			[]string{`signature "s"`, `output "y" is not a tensor`}},
		{"resource output", map[string]Signature{"s": {Outputs: map[string]tfgo.Output{"h": b.wq.Handle()}}},
			[]string{`output "h"`, "resource"}},
		{"another graph", map[string]Signature{"s": {Outputs: map[string]tfgo.Output{"c": tfgo.Const(tfgo.NewScope(), float32(1))}}},
			[]string{`output "c"`, "another graph"}},
	} {
		err := Export(dir, b.s.Graph(), b.sess, c.sigs, ExportOptions{})
		require.Error(t, err, c.name)
		for _, w := range c.want {
			require.Contains(t, err.Error(), w, c.name)
		}
		t.Logf("%s: %v", c.name, err)
		entries, err := os.ReadDir(base)
		if !os.IsNotExist(err) { // no directory at all is nothing written too
			require.NoError(t, err)
		}
		require.Empty(t, entries, "%s: nothing is written", c.name)
	}
	// An existing directory is not overwritten.
	require.NoError(t, os.Mkdir(dir, 0o755))
	err := Export(dir, b.s.Graph(), b.sess, b.signatures(), ExportOptions{})
	require.ErrorIs(t, err, os.ErrExist)
}

// TestExportAssetsAndInitOp exports a vocabulary lookup: a hash table
// initialized from a text file asset by the init op. The source file is
// deleted before loading, so the loaders must use the copy in assets/.
func TestExportAssetsAndInitOp(t *testing.T) {
	s := tfgo.NewScope()
	vocabSrc := filepath.Join(t.TempDir(), "vocab.txt")
	require.NoError(t, os.WriteFile(vocabSrc, []byte("the\nquick\nbrown\nfox\n"), 0o644))
	vocab := tfgo.Const(s.SubScope("vocab"), vocabSrc)
	table := tfgo.HashTableV2(s, tfgo.String, tfgo.Int64, tfgo.HashTableV2SharedName("vocab_table"))
	initTable := tfgo.InitializeTableFromTextFileV2(s, table, vocab, -2, -1)
	initOp := s.WithControlDependencies(initTable).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "init_all_tables"})
	words := tfgo.Placeholder(s.SubScope("words"), tfgo.String, -1)
	ids := tfgo.LookupTableFindV2(s.SubScope("lookup"), table, words, tfgo.Const(s, int64(-1)))
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, initOp)
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "vocab_model")
	sigs := map[string]Signature{"serving_default": {Inputs: map[string]tfgo.Output{"words": words}, Outputs: map[string]tfgo.Output{"ids": ids}}}
	require.NoError(t, Export(dir, s.Graph(), sess, sigs, ExportOptions{Assets: []tfgo.Output{vocab}, InitOp: initOp}))
	require.NoError(t, os.Remove(vocabSrc))
	copied, err := os.ReadFile(filepath.Join(dir, "assets", "vocab.txt"))
	require.NoError(t, err)
	require.Equal(t, "the\nquick\nbrown\nfox\n", string(copied))
	_, err = os.Stat(filepath.Join(dir, "variables"))
	require.NoError(t, err, "variables/ exists even without variables")

	query := []string{"fox", "the", "cat", "brown"}
	m, err := Load(dir)
	require.NoError(t, err)
	defer m.Close()
	require.Len(t, m.Signatures(), 1, "the init op is not listed")
	out, err := m.Run(context.Background(), "serving_default", map[string]any{"words": query})
	require.NoError(t, err)
	got, err := tfgo.Int64s(out["ids"])
	require.NoError(t, err)

	py := interop.Python(t, `
m = tf.saved_model.load(inputs["dir"].item().decode())
outputs["ids"] = m.signatures["serving_default"](words=tf.constant(inputs["words"]))["ids"]
`, map[string]*tfgo.Tensor{"dir": str(t, dir), "words": tensor(t, query)})
	want, err := tfgo.Int64s(py["ids"])
	require.NoError(t, err)
	require.Equal(t, want, got)
	t.Logf("ids of %v: Go %v, Python %v", query, got, want)

	mg := m.MetaGraph()
	require.Len(t, mg.GetAssetFileDef(), 1)
	require.Equal(t, "vocab.txt", mg.GetAssetFileDef()[0].GetFilename())
	require.Equal(t, vocab.Name(), mg.GetAssetFileDef()[0].GetTensorInfo().GetName())
	require.Equal(t, []string{vocab.Name()}, mg.GetCollectionDef()["asset_filepaths"].GetNodeList().GetValue())
	require.Equal(t, "init_all_tables", mg.GetSignatureDef()[savedmodel.InitOpSignatureKey].GetOutputs()[savedmodel.InitOpSignatureKey].GetName())

	// A missing asset is reported, naming the file.
	require.NoError(t, os.Remove(filepath.Join(dir, "assets", "vocab.txt")))
	_, err = Load(dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), filepath.Join(dir, "assets", "vocab.txt"))
	require.True(t, errors.Is(err, os.ErrNotExist))
}

// TestExportFunctions exports a graph that calls graph functions (a
// function calling another, and a v2 While loop) capturing a variable;
// the library keeps what the signature calls and drops a function nothing
// exported calls.
func TestExportFunctions(t *testing.T) {
	s := tfgo.NewScope()
	x := tfgo.Placeholder(s.SubScope("x"), tfgo.Float, -1, 4)
	w := tfgo.NewVariable(s, "w", tfgo.Float, []int64{4}, tfgo.RandomNormal(0, 1, 3))
	spec := []tfgo.TensorSpec{{DType: tfgo.Float, Shape: tfgo.MakeShape(-1, 4)}}
	inner, err := tfgo.DefineFunction(s, "scale_by_w", spec, func(fs *tfgo.Scope, args []tfgo.Output) []tfgo.Output {
		return []tfgo.Output{tfgo.Mul(fs, args[0], tfgo.Capture(fs, w.Value()))}
	})
	require.NoError(t, err)
	outer, err := tfgo.DefineFunction(s, "outer", spec, func(fs *tfgo.Scope, args []tfgo.Output) []tfgo.Output {
		y := tfgo.Call(fs, inner, args[0])[0]
		return []tfgo.Output{tfgo.Tanh(fs, y)}
	})
	require.NoError(t, err)
	_, err = tfgo.DefineFunction(s, "unused", spec, func(fs *tfgo.Scope, args []tfgo.Output) []tfgo.Output {
		return []tfgo.Output{tfgo.Neg(fs, args[0])}
	})
	require.NoError(t, err)
	y := tfgo.Call(s, outer, x)[0]
	// Three times y <- y + 0.5*tanh(y), in a While loop.
	loop := tfgo.While(s, []tfgo.Output{tfgo.Const(s, int32(0)), y},
		func(cs *tfgo.Scope, v []tfgo.Output) tfgo.Output {
			return tfgo.Less(cs, v[0], tfgo.Const(cs, int32(3)))
		},
		func(bs *tfgo.Scope, v []tfgo.Output) []tfgo.Output {
			step := tfgo.Mul(bs, tfgo.Const(bs, float32(0.5)), tfgo.Tanh(bs, v[1]))
			return []tfgo.Output{tfgo.AddV2(bs, v[0], tfgo.Const(bs, int32(1))),
				tfgo.AddV2(bs, v[1], step)}
		}, tfgo.WhileOptions{})
	out := tfgo.Identity(s.SubScope("out"), loop[1])
	init := tfgo.GlobalVariablesInitializer(s)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "functions")
	require.NoError(t, Export(dir, s.Graph(), sess, map[string]Signature{
		"serving_default": {Inputs: map[string]tfgo.Output{"x": x}, Outputs: map[string]tfgo.Output{"y": out}},
	}, ExportOptions{}))
	sm, err := savedmodel.ReadSavedModel(dir)
	require.NoError(t, err)
	var fns []string
	for _, f := range sm.GetMetaGraphs()[0].GetGraphDef().GetLibrary().GetFunction() {
		fns = append(fns, f.GetSignature().GetName())
	}
	require.Contains(t, fns, "outer")
	require.Contains(t, fns, "scale_by_w")
	require.NotContains(t, fns, "unused")
	require.Len(t, fns, 4, "outer, scale_by_w, the loop's cond and body: %v", fns)

	xv := tensor(t, [][]float32{{1, -2, 0.5, 3}, {0, 1, 2, -1}})
	want, err := sess.Run(map[tfgo.Output]any{x: xv}, []tfgo.Output{out})
	require.NoError(t, err)
	m, err := Load(dir)
	require.NoError(t, err)
	defer m.Close()
	got, err := m.Run(context.Background(), "serving_default", map[string]any{"x": xv})
	require.NoError(t, err)
	closeTo(t, "functions, C++ loader", want[0], got["y"], 1e-6)
	py := interop.Python(t, `
m = tf.saved_model.load(inputs["dir"].item().decode())
outputs["y"] = m.signatures["serving_default"](x=tf.constant(inputs["x"]))["y"]
`, map[string]*tfgo.Tensor{"dir": str(t, dir), "x": xv})
	closeTo(t, "functions, Python", want[0], py["y"], 1e-6)
}
