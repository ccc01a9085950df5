package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	oppb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// Signature is a signature to export: named inputs (the tensors a caller
// feeds, usually placeholders) and outputs (the tensors it fetches) of the
// graph, and the method name TensorFlow Serving dispatches on (default
// "tensorflow/serving/predict").
type Signature struct {
	Inputs, Outputs map[string]tfgo.Output
	MethodName      string
}

// ExportOptions configure Export. The zero value exports for serving.
type ExportOptions struct {
	// Tags of the meta graph; default {"serve"}.
	Tags []string
	// Assets are scalar string constants (tfgo.Const(s, "/path/vocab.txt"))
	// holding the paths of files the model reads, such as the vocabulary
	// of a lookup table initialized by InitOp. Each file is copied into
	// assets/ and recorded as TensorFlow records v1 assets (an
	// asset_file_def per constant and the "asset_filepaths" collection);
	// loaders feed the constant with the copy's path when they run InitOp.
	Assets []tfgo.Output
	// InitOp, if set, is run by loaders once the variables are restored
	// (e.g. a group of table initializers), recorded as the
	// "__saved_model_init_op" signature.
	InitOp *tfgo.Operation
	// ClearDevices drops the device placements of the exported nodes.
	ClearDevices bool
}

// Export writes a TF1-style SavedModel of graph g, with the variable
// values of sess (a session on g), to the new directory dir, atomically (see
// savedmodel.Write):
//
//   - saved_model.pb: one MetaGraphDef tagged "serve" (or opts.Tags)
//     whose graph is g pruned to what the signatures' outputs (and the
//     init op and asset constants) need, with the save and restore ops
//     tf.compat.v1.train.Saver builds for resource variables added under
//     "save/" (filename "save/Const", "save/SaveV2" and
//     "save/control_dependency", "save/RestoreV2" and one AssignVariableOp
//     per variable grouped by "save/restore_all") and described by its
//     SaverDef; the signatures with their inputs' and outputs' names,
//     dtypes and shapes; the stripped op list; assets;
//   - variables/variables.{index,data-00000-of-00001}: the value in sess
//     of every variable the pruned graph holds, under its shared name (the
//     keys the restore op reads);
//   - assets/: copies of opts.Assets;
//   - fingerprint.pb.
//
// A signature output that needs a placeholder which is not one of the
// signature's inputs is an error naming both, reported before anything is
// written. Variables must be initialized in sess. Export may add a
// ReadVariableOp to g for a variable that has no plain read to fetch.
func Export(dir string, g *tfgo.Graph, sess *tfgo.Session, signatures map[string]Signature, opts ExportOptions) error {
	d, err := prepareExport(g, sess, signatures, opts)
	if err != nil {
		return fmt.Errorf("exporting SavedModel %s: %w", dir, err)
	}
	if err := savedmodel.Write(dir, d); err != nil {
		return fmt.Errorf("exporting SavedModel %s: %w", dir, err)
	}
	return nil
}

// ExportVersion exports as Export does to BASE/<version>/, TensorFlow
// Serving's layout, publishing the version only when it is complete (see
// savedmodel.Publish). It returns the version's directory.
func ExportVersion(base string, version int64, g *tfgo.Graph, sess *tfgo.Session, signatures map[string]Signature, opts ExportOptions) (string, error) {
	d, err := prepareExport(g, sess, signatures, opts)
	if err != nil {
		return "", fmt.Errorf("exporting version %d to %s: %w", version, base, err)
	}
	dir, err := savedmodel.Publish(base, version, d)
	if err != nil {
		return "", fmt.Errorf("exporting version %d to %s: %w", version, base, err)
	}
	return dir, nil
}

// exportVar is a resource variable of the exported graph.
type exportVar struct {
	key    string // shared name: the checkpoint key
	handle string // VarHandleOp node name
	dtype  tfgo.DataType
	read   tfgo.Output // a read in the source graph, fetched from sess
}

func prepareExport(g *tfgo.Graph, sess *tfgo.Session, signatures map[string]Signature, opts ExportOptions) (*savedmodel.Directory, error) {
	if g == nil || sess == nil {
		return nil, errors.New("a graph and a session on it are required")
	}
	if sess.Graph() != g {
		return nil, errors.New("the session does not run the graph being exported")
	}
	if len(signatures) == 0 {
		return nil, errors.New("no signature to export")
	}
	tags := opts.Tags
	if len(tags) == 0 {
		tags = []string{savedmodel.TagServe}
	}
	gd, err := g.GraphDef()
	if err != nil {
		return nil, err
	}
	ix := newGraphIndex(gd)

	// Check the signatures and collect the roots of the pruned graph.
	var roots []string
	for _, name := range sortedKeys(signatures) {
		sig := signatures[name]
		if name == "" || name == savedmodel.InitOpSignatureKey {
			return nil, fmt.Errorf("signature name %q is reserved or empty", name)
		}
		if len(sig.Outputs) == 0 {
			return nil, fmt.Errorf("signature %q has no outputs", name)
		}
		fed := map[string]bool{}
		for _, k := range sortedKeys(sig.Inputs) {
			o := sig.Inputs[k]
			if err := checkTensor(g, name, "input", k, o); err != nil {
				return nil, err
			}
			fed[o.Name()] = true
			roots = append(roots, o.Op.Name())
		}
		var outRoots []string
		for _, k := range sortedKeys(sig.Outputs) {
			o := sig.Outputs[k]
			if err := checkTensor(g, name, "output", k, o); err != nil {
				return nil, err
			}
			switch o.DataType() {
			case tfgo.Resource, tfgo.Variant:
				return nil, fmt.Errorf("signature %q: output %q (%s) is a %s tensor, which a signature cannot return", name, k, o.Name(), o.DataType())
			}
			if fed[o.Name()] {
				continue
			}
			outRoots = append(outRoots, o.Op.Name())
		}
		if p, root := ix.unfedPlaceholder(outRoots, fed); p != "" {
			return nil, fmt.Errorf("signature %q: output %s needs placeholder %q, which is not one of the signature's inputs (%s)",
				name, root, p, quoteList(sortedKeys(sig.Inputs)))
		}
		roots = append(roots, outRoots...)
	}

	// Assets: string constants holding source paths.
	var assets []savedmodel.Asset
	var assetFiles []*cpb.AssetFileDef
	byName := map[string]string{} // asset filename -> source
	for i, a := range opts.Assets {
		if a.Op == nil || a.Op.Graph() != g {
			return nil, fmt.Errorf("asset %d is not a tensor of the exported graph", i)
		}
		src, err := assetSource(a)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("asset %s: %w", a.Name(), err)
		}
		fn := filepath.Base(src)
		for n := 1; byName[fn] != "" && byName[fn] != src; n++ {
			fn = fmt.Sprintf("%s_%d", filepath.Base(src), n)
		}
		if byName[fn] == "" {
			byName[fn] = src
			assets = append(assets, savedmodel.Asset{Filename: fn, Source: src})
		}
		assetFiles = append(assetFiles, &cpb.AssetFileDef{TensorInfo: &cpb.TensorInfo{Encoding: &cpb.TensorInfo_Name{Name: a.Name()}}, Filename: fn})
		roots = append(roots, a.Op.Name())
	}
	if opts.InitOp != nil {
		if opts.InitOp.Graph() != g {
			return nil, errors.New("the init op belongs to another graph")
		}
		if p, _ := ix.unfedPlaceholder([]string{opts.InitOp.Name()}, nil); p != "" {
			return nil, fmt.Errorf("the init op %s needs placeholder %q", opts.InitOp.Name(), p)
		}
		roots = append(roots, opts.InitOp.Name())
	}

	keep, err := ix.ancestors(roots)
	if err != nil {
		return nil, err
	}
	vars, err := exportVariables(g, ix, keep)
	if err != nil {
		return nil, err
	}
	pruned := ix.prune(keep, opts.ClearDevices)

	// The exported graph: the pruned nodes and the saver's ops.
	eg := tfgo.NewGraph()
	defer eg.Close()
	if err := eg.Import(pruned, ""); err != nil {
		return nil, fmt.Errorf("importing the pruned graph: %w", err)
	}
	var saverDef *cpb.SaverDef
	if len(vars) > 0 {
		if saverDef, err = addSaver(eg, vars); err != nil {
			return nil, err
		}
	}
	egd, err := eg.GraphDef()
	if err != nil {
		return nil, err
	}
	ops := &oppb.OpList{}
	for _, t := range opTypes(egd) {
		def, err := eg.OpDef(t)
		if err != nil {
			return nil, err
		}
		ops.Op = append(ops.Op, def)
	}

	sigDefs := map[string]*cpb.SignatureDef{}
	for name, sig := range signatures {
		sd := &cpb.SignatureDef{Inputs: map[string]*cpb.TensorInfo{}, Outputs: map[string]*cpb.TensorInfo{}, MethodName: sig.MethodName}
		if sd.MethodName == "" {
			sd.MethodName = savedmodel.PredictMethodName
		}
		for k, o := range sig.Inputs {
			if sd.Inputs[k], err = tensorInfo(eg, o.Name()); err != nil {
				return nil, err
			}
		}
		for k, o := range sig.Outputs {
			if sd.Outputs[k], err = tensorInfo(eg, o.Name()); err != nil {
				return nil, err
			}
		}
		sigDefs[name] = sd
	}
	collections := map[string]*cpb.CollectionDef{}
	if opts.InitOp != nil {
		name := opts.InitOp.Name()
		sigDefs[savedmodel.InitOpSignatureKey] = &cpb.SignatureDef{Outputs: map[string]*cpb.TensorInfo{
			savedmodel.InitOpSignatureKey: {Encoding: &cpb.TensorInfo_Name{Name: name}, TensorShape: &tspb.TensorShapeProto{UnknownRank: true}},
		}}
	}
	if len(assetFiles) > 0 {
		names := make([]string, len(assetFiles))
		for i, a := range assetFiles {
			names[i] = a.GetTensorInfo().GetName()
		}
		collections[savedmodel.AssetFilepathsCollection] = &cpb.CollectionDef{
			Kind: &cpb.CollectionDef_NodeList_{NodeList: &cpb.CollectionDef_NodeList{Value: names}}}
	}
	mg := &cpb.MetaGraphDef{
		MetaInfoDef: &cpb.MetaGraphDef_MetaInfoDef{
			Tags:              tags,
			TensorflowVersion: tfgo.Version(),
			StrippedOpList:    ops,
		},
		GraphDef:      egd,
		SaverDef:      saverDef,
		CollectionDef: collections,
		SignatureDef:  sigDefs,
		AssetFileDef:  assetFiles,
	}
	if len(collections) == 0 {
		mg.CollectionDef = nil
	}
	d := &savedmodel.Directory{
		SavedModel: &cpb.SavedModel{SavedModelSchemaVersion: savedmodel.SchemaVersion, MetaGraphs: []*cpb.MetaGraphDef{mg}},
		Assets:     assets,
	}
	if len(vars) > 0 {
		d.WriteVariables = func(w *savedmodel.BundleWriter) error { return writeVariables(w, sess, vars) }
	}
	return d, nil
}

// checkTensor checks a signature tensor belongs to g.
func checkTensor(g *tfgo.Graph, sig, kind, key string, o tfgo.Output) error {
	if key == "" {
		return fmt.Errorf("signature %q: an %s has an empty key", sig, kind)
	}
	if o.Op == nil {
		return fmt.Errorf("signature %q: %s %q is not a tensor (an earlier graph-building error?)", sig, kind, key)
	}
	if o.Op.Graph() != g {
		return fmt.Errorf("signature %q: %s %q (%s) belongs to another graph", sig, kind, key, o.Name())
	}
	return nil
}

// assetSource returns the path a scalar string Const holds.
func assetSource(a tfgo.Output) (string, error) {
	if a.Op.Type() != "Const" || a.DataType() != tfgo.String {
		return "", fmt.Errorf("asset %s is a %s of %s: want a string Const holding a file's path", a.Name(), a.Op.Type(), a.DataType())
	}
	nd, err := a.Op.NodeDef()
	if err != nil {
		return "", err
	}
	v := nd.GetAttr()["value"].GetTensor()
	if v == nil || len(v.GetStringVal()) != 1 || len(v.GetTensorShape().GetDim()) != 0 {
		return "", fmt.Errorf("asset %s: want a scalar string constant", a.Name())
	}
	return string(v.GetStringVal()[0]), nil
}

// exportVariables lists the resource variables among the kept nodes, by
// checkpoint key, with a read of each in g to fetch its value.
func exportVariables(g *tfgo.Graph, ix *graphIndex, keep map[string]bool) ([]*exportVar, error) {
	byKey := map[string]*exportVar{}
	var reader *tfgo.Scope
	for _, n := range ix.gd.GetNode() {
		if !keep[n.GetName()] || n.GetOp() != "VarHandleOp" {
			continue
		}
		key := string(n.GetAttr()["shared_name"].GetS())
		if key == "" {
			key = n.GetName()
		}
		if _, dup := byKey[key]; dup {
			continue // another handle on the same resource
		}
		dt := tfgo.DataType(n.GetAttr()["dtype"].GetType())
		if dt.Size() == 0 && dt != tfgo.String {
			return nil, fmt.Errorf("variable %q is %s, which a checkpoint cannot hold", key, dt)
		}
		h := g.Operation(n.GetName())
		v := &exportVar{key: key, handle: n.GetName(), dtype: dt, read: plainRead(h)}
		if v.read.Op == nil {
			if reader == nil {
				reader = tfgo.NewScopeWithGraph(g).SubScope("export_read")
			}
			v.read = tfgo.ReadVariableOp(reader, h.Output(0), dt)
			if err := reader.Err(); err != nil {
				return nil, fmt.Errorf("reading variable %q: %w", key, err)
			}
		}
		byKey[key] = v
	}
	vars := make([]*exportVar, 0, len(byKey))
	for _, k := range sortedKeys(byKey) {
		vars = append(vars, byKey[k])
	}
	return vars, nil
}

// plainRead finds a ReadVariableOp of handle h without control inputs (so
// that fetching it runs nothing else), or returns the zero Output.
func plainRead(h *tfgo.Operation) tfgo.Output {
	for _, c := range h.Consumers(0) {
		if c.Op.Type() == "ReadVariableOp" && c.Index == 0 && len(c.Op.ControlInputs()) == 0 {
			return c.Op.Output(0)
		}
	}
	return tfgo.Output{}
}

// addSaver adds to eg the ops tf.compat.v1.train.Saver (V2 format, not
// sharded) builds for resource variables, and returns its SaverDef.
func addSaver(eg *tfgo.Graph, vars []*exportVar) (*cpb.SaverDef, error) {
	s := tfgo.NewScopeWithGraph(eg).SubScope("save")
	str := func(name string, v any) tfgo.Output {
		t, err := tfgo.NewTensor(v)
		if err != nil {
			s.UpdateErr(name, err)
			return tfgo.Output{}
		}
		defer t.Close()
		return tfgo.Out(s.AddOperation(tfgo.OpSpec{Type: "Const", Name: name, Attrs: map[string]any{"dtype": tfgo.String, "value": t}}), 0)
	}
	scalar := tfgo.MakeShape()
	fname := tfgo.Out(s.AddOperation(tfgo.OpSpec{Type: "PlaceholderWithDefault", Name: "filename",
		Input: []any{str("filename/input", "model")}, Attrs: map[string]any{"dtype": tfgo.String, "shape": scalar}}), 0)
	filename := tfgo.Out(s.AddOperation(tfgo.OpSpec{Type: "PlaceholderWithDefault", Name: "Const",
		Input: []any{fname}, Attrs: map[string]any{"dtype": tfgo.String, "shape": scalar}}), 0)

	keys := make([]string, len(vars))
	slices := make([]string, len(vars))
	handles := make([]tfgo.Output, len(vars))
	values := make([]tfgo.Output, len(vars))
	dtypes := make([]tfgo.DataType, len(vars))
	for i, v := range vars {
		keys[i] = v.key
		h := eg.Operation(v.handle)
		if h == nil {
			return nil, fmt.Errorf("variable %q: no handle %q in the exported graph", v.key, v.handle)
		}
		handles[i] = h.Output(0)
		dtypes[i] = v.dtype
		if values[i] = plainRead(h); values[i].Op == nil {
			values[i] = tfgo.ReadVariableOp(s, handles[i], v.dtype)
		}
	}
	save := tfgo.SaveV2(s, filename, str("SaveV2/tensor_names", keys), str("SaveV2/shape_and_slices", slices), values)
	var saveTensor tfgo.Output
	if save != nil {
		saveTensor = tfgo.Out(s.WithControlDependencies(save).AddOperation(tfgo.OpSpec{Type: "Identity", Name: "control_dependency",
			Input: []any{filename}, Attrs: map[string]any{"T": tfgo.String}}), 0)
	}
	restored := tfgo.RestoreV2(s, filename, str("RestoreV2/tensor_names", keys), str("RestoreV2/shape_and_slices", slices), dtypes)
	var assigns []*tfgo.Operation
	for i, r := range restored { // none when the scope has an error
		id := tfgo.Identity(s, r)
		a := tfgo.AssignVariableOp(s, handles[i], id)
		assigns = append(assigns, a)
	}
	var restoreAll *tfgo.Operation
	if s.Err() == nil {
		restoreAll = s.WithControlDependencies(assigns...).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "restore_all"})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("adding the saver: %w", err)
	}
	return &cpb.SaverDef{
		FilenameTensorName:        filename.Name(),
		SaveTensorName:            saveTensor.Name(),
		RestoreOpName:             restoreAll.Name(),
		MaxToKeep:                 5,
		KeepCheckpointEveryNHours: 10000,
		Version:                   cpb.SaverDef_V2,
	}, nil
}

// tensorInfo describes the tensor name of eg for a SignatureDef.
func tensorInfo(eg *tfgo.Graph, name string) (*cpb.TensorInfo, error) {
	o, err := eg.OutputByName(name)
	if err != nil {
		return nil, err
	}
	shape, err := o.Shape()
	if err != nil {
		return nil, err
	}
	return &cpb.TensorInfo{
		Encoding:    &cpb.TensorInfo_Name{Name: name},
		Dtype:       o.DataType().Proto(),
		TensorShape: shapeProto(shape),
	}, nil
}

func shapeProto(s tfgo.Shape) *tspb.TensorShapeProto {
	if s.UnknownRank {
		return &tspb.TensorShapeProto{UnknownRank: true}
	}
	p := &tspb.TensorShapeProto{}
	for _, d := range s.Dims {
		p.Dim = append(p.Dim, &tspb.TensorShapeProto_Dim{Size: d})
	}
	return p
}

// writeVariables reads each variable from sess and adds it to w, one at a
// time.
func writeVariables(w *savedmodel.BundleWriter, sess *tfgo.Session, vars []*exportVar) error {
	for _, v := range vars {
		outs, err := sess.Run(nil, []tfgo.Output{v.read})
		if err != nil {
			return fmt.Errorf("reading variable %q (is it initialized?): %w", v.key, err)
		}
		t := outs[0]
		bt := &savedmodel.Tensor{DType: t.DataType(), Shape: t.Shape()}
		if t.DataType() == tfgo.String {
			bt.Strings, err = t.Strings()
		} else {
			bt.Data = append([]byte(nil), t.Data()...)
		}
		t.Close()
		if err != nil {
			return fmt.Errorf("reading variable %q: %w", v.key, err)
		}
		if err := w.Add(v.key, bt); err != nil {
			return err
		}
	}
	return nil
}
