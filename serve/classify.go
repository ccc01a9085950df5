package serve

import (
	"context"
	"strconv"
	"strings"

	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
	expb "github.com/wamuir/graft/tensorflow/core/example/example_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// The keys of classification and regression signatures
// (tensorflow/cc/saved_model/signature_constants.h).
const (
	classifyInputs  = "inputs"
	classifyClasses = "classes"
	classifyScores  = "scores"
	regressInputs   = "inputs"
	regressOutputs  = "outputs"
)

// featureKind names a Feature's kind as TF Serving's messages do.
func featureKind(f *expb.Feature) string {
	switch f.GetKind().(type) {
	case *expb.Feature_BytesList:
		return "bytes"
	case *expb.Feature_FloatList:
		return "float"
	case *expb.Feature_Int64List:
		return "int64"
	}
	return "UNKNOWN"
}

// addFeatureValue appends one JSON value to a Feature as TF Serving's
// AddValueToFeature: a decimal number is a float, a whole one an int64, a
// bool an int64, a string or {"b64": ...} bytes; one Feature holds one kind.
func addFeatureValue(v *jvalue, name string, f *expb.Feature) error {
	kindErr := func() error {
		return statusf(InvalidArgument, "Unexpected element type in feature: %s expecting type: %s", name, featureKind(f))
	}
	typeErr := func() error {
		return statusf(InvalidArgument, "Feature: %s has element with unexpected JSON type: %s", name, v.typeName())
	}
	bytes := func(b []byte) error {
		if f.Kind == nil {
			f.Kind = &expb.Feature_BytesList{BytesList: &expb.BytesList{}}
		}
		bl := f.GetBytesList()
		if bl == nil {
			return kindErr()
		}
		bl.Value = append(bl.Value, b)
		return nil
	}
	ints := func(n int64) error {
		if f.Kind == nil {
			f.Kind = &expb.Feature_Int64List{Int64List: &expb.Int64List{}}
		}
		il := f.GetInt64List()
		if il == nil {
			return kindErr()
		}
		il.Value = append(il.Value, n)
		return nil
	}
	switch v.kind {
	case jNull, jArray:
		return typeErr()
	case jTrue:
		return ints(1)
	case jFalse:
		return ints(0)
	case jString:
		return bytes([]byte(v.s))
	case jObject:
		if !v.isBase64() {
			return typeErr()
		}
		b, err := decodeBase64(v.arr[0].s)
		if err != nil {
			return err
		}
		return bytes(b)
	}
	if !v.isInteger() {
		if f.Kind == nil {
			f.Kind = &expb.Feature_FloatList{FloatList: &expb.FloatList{}}
		}
		fl := f.GetFloatList()
		if fl == nil {
			return kindErr()
		}
		fl.Value = append(fl.Value, float32(v.float64()))
		return nil
	}
	n, err := strconv.ParseInt(v.s, 10, 64)
	if err != nil {
		if strings.HasPrefix(v.s, "-") {
			return statusf(InvalidArgument, "Feature: %s has element %s out of the int64 range", name, v.s)
		}
		return statusf(InvalidArgument, "Feature: %s has uint64_t element. Only int64_t is supported.", name)
	}
	return ints(n)
}

// exampleFromJSON builds a tf.Example from {"feature": value or list, ...}.
func exampleFromJSON(v *jvalue) (*expb.Example, error) {
	if v.kind != jObject {
		return nil, statusf(InvalidArgument, "Example must be JSON object but got JSON %s", v.typeName())
	}
	ex := &expb.Example{Features: &expb.Features{Feature: map[string]*expb.Feature{}}}
	for i, name := range v.keys {
		content := &v.arr[i]
		f := &expb.Feature{}
		if content.kind == jArray {
			for k := range content.arr {
				if err := addFeatureValue(&content.arr[k], name, f); err != nil {
					return nil, err
				}
			}
		} else if err := addFeatureValue(content, name, f); err != nil {
			return nil, err
		}
		ex.Features.Feature[name] = f
	}
	return ex, nil
}

// serializedExamples reads "context" and "examples" of a classify or
// regress request into serialized tf.Examples (see examplesTensor).
func serializedExamples(doc *jvalue, classify bool) (*tfgo.Tensor, int, error) {
	var context *expb.Example
	if c := doc.member("context"); c != nil {
		var err error
		if context, err = exampleFromJSON(c); err != nil {
			return nil, 0, err
		}
	}
	list := doc.member("examples")
	method := "regress"
	if classify {
		method = "classify"
	}
	if list == nil {
		return nil, 0, statusf(InvalidArgument, "JSON Value: %s When method is %s, key 'examples' is expected and was not found", doc.debugString(), method)
	}
	if list.kind != jArray {
		return nil, 0, statusf(InvalidArgument, "JSON Value: %s Expecting 'examples' value to be an list/array", doc.debugString())
	}
	if len(list.arr) == 0 {
		return nil, 0, statusf(InvalidArgument, "JSON Value: %s 'examples' value is an empty array", doc.debugString())
	}
	exs := make([]*expb.Example, len(list.arr))
	for i := range list.arr {
		ex, err := exampleFromJSON(&list.arr[i])
		if err != nil {
			return nil, 0, err
		}
		exs[i] = ex
	}
	return examplesTensor(context, exs)
}

// examplesTensor serializes tf.Examples into the string tensor that
// classification and regression signatures take, for REST's JSON and
// gRPC's Input alike. A context's bytes come before each example's:
// parsing the concatenation merges them, as TF Serving's
// InputToSerializedExampleTensor relies on.
func examplesTensor(context *expb.Example, exs []*expb.Example) (*tfgo.Tensor, int, error) {
	var prefix []byte
	if context != nil {
		var err error
		if prefix, err = proto.Marshal(context); err != nil {
			return nil, 0, statusf(Internal, "serializing the context: %v", err)
		}
	}
	ser := make([][]byte, len(exs))
	for i, ex := range exs {
		b, err := proto.Marshal(ex)
		if err != nil {
			return nil, 0, statusf(Internal, "serializing example %d: %v", i, err)
		}
		ser[i] = append(append([]byte(nil), prefix...), b...)
	}
	t, err := tfgo.NewStringTensor([]int64{int64(len(ser))}, ser)
	if err != nil {
		return nil, 0, statusf(Internal, "examples tensor: %v", err)
	}
	return t, len(ser), nil
}

// classifyOrRegress answers :classify and :regress.
func (s *Server) classifyOrRegress(ctx context.Context, sp spec, doc *jvalue, classify bool) (string, error) {
	h, sigName, err := s.acquireFor(sp, doc)
	if err != nil {
		return "", err
	}
	defer h.release()
	sigName, sig, err := exampleSignature(h, sigName, classify)
	if err != nil {
		return "", err
	}
	in, n, err := serializedExamples(doc, classify)
	if err != nil {
		return "", err
	}
	defer in.Close()
	res, err := s.runExamples(ctx, h, sigName, sig, in, n, classify)
	if err != nil {
		return "", err
	}
	if classify {
		return classifyJSON(res)
	}
	return regressJSON(res), nil
}

// exampleSignature finds a classify or regress request's signature ("" is
// the default) and checks it as TF Serving's PreProcessClassification /
// PreProcessRegression do: one input "inputs" (serialized tf.Examples), and
// "classes" and/or "scores" (classify) or "outputs" (regress).
func exampleSignature(h *handle, sigName string, classify bool) (string, runner.SignatureInfo, error) {
	if sigName == "" {
		sigName = DefaultSignature
	}
	sig, ok := h.model.Signature(sigName)
	if !ok {
		return "", sig, statusf(InvalidArgument, "No signature was found with the name: %s", sigName)
	}
	if len(sig.Inputs) != 1 {
		return "", sig, statusf(InvalidArgument, "Expected one input Tensor.")
	}
	if classify {
		if n := len(sig.Outputs); n != 1 && n != 2 {
			return "", sig, statusf(InvalidArgument, "Expected one or two output Tensors, found %d", n)
		}
		if _, ok := sig.Inputs[classifyInputs]; !ok {
			return "", sig, statusf(InvalidArgument, "No classification inputs found in SignatureDef: %s", sig)
		}
		_, hasClasses := sig.Outputs[classifyClasses]
		_, hasScores := sig.Outputs[classifyScores]
		if !hasClasses && !hasScores {
			return "", sig, statusf(InvalidArgument, "Expected classification signature outputs to contain at least one of \"classes\" or \"scores\". Signature was: %s", sig)
		}
	} else {
		if len(sig.Outputs) != 1 {
			return "", sig, statusf(InvalidArgument, "Expected one output Tensor.")
		}
		if _, ok := sig.Inputs[regressInputs]; !ok {
			return "", sig, statusf(InvalidArgument, "No regression inputs found in SignatureDef: %s", sig)
		}
		if _, ok := sig.Outputs[regressOutputs]; !ok {
			return "", sig, statusf(InvalidArgument, "No regression outputs found in SignatureDef: %s", sig)
		}
	}
	return sigName, sig, nil
}

// exampleResults are a classify or regress run's results for n examples:
// numClasses (label, score) pairs per example, or one value per example.
type exampleResults struct {
	n          int
	numClasses int64
	labels     [][]byte  // nil when the signature has no classes
	scores     []float32 // nil when the signature has no scores
	values     []float32 // regress
}

// runExamples runs a signature checked by exampleSignature on n serialized
// examples and checks its outputs as TF Serving's PostProcess* do.
func (s *Server) runExamples(ctx context.Context, h *handle, sigName string, sig runner.SignatureInfo, in *tfgo.Tensor, n int, classify bool) (*exampleResults, error) {
	outs, err := s.runSignature(ctx, h, sigName, sig, requestTensors{classifyInputs: in}, nil)
	if err != nil {
		return nil, err
	}
	defer closeAll(outs)
	if classify {
		return classifyValues(outs[classifyClasses], outs[classifyScores], n)
	}
	return regressValues(outs[regressOutputs], n)
}

func classifyValues(classes, scores *tfgo.Tensor, n int) (*exampleResults, error) {
	r := &exampleResults{n: n}
	if classes != nil {
		sh := classes.Shape()
		if len(sh) != 2 {
			return nil, statusf(InvalidArgument, "Expected Tensor shape: [batch_size num_classes] but got %s", shapeString(sh))
		}
		if classes.DataType() != tfgo.String {
			return nil, statusf(InvalidArgument, "Expected classes Tensor of DT_STRING. Got: %s", dtName(classes.DataType()))
		}
		if sh[0] != int64(n) {
			return nil, statusf(InvalidArgument, "Expected classes output batch size of %d. Got: %d", n, sh[0])
		}
		var err error
		if r.labels, err = classes.Strings(); err != nil {
			return nil, statusf(Internal, "classes: %v", err)
		}
		r.numClasses = sh[1]
	}
	if scores != nil {
		sh := scores.Shape()
		if len(sh) != 2 {
			return nil, statusf(InvalidArgument, "Expected Tensor shape: [batch_size num_classes] but got %s", shapeString(sh))
		}
		if scores.DataType() != tfgo.Float {
			return nil, statusf(InvalidArgument, "Expected scores Tensor of DT_FLOAT. Got: %s", dtName(scores.DataType()))
		}
		if sh[0] != int64(n) {
			return nil, statusf(InvalidArgument, "Expected scores output batch size of %d. Got: %d", n, sh[0])
		}
		if classes != nil && sh[1] != r.numClasses {
			return nil, statusf(InvalidArgument, "Tensors class and score should match in dim_size(1). Got %d vs. %d", r.numClasses, sh[1])
		}
		var err error
		if r.scores, err = tfgo.Float32s(scores); err != nil {
			return nil, statusf(Internal, "scores: %v", err)
		}
		r.numClasses = sh[1]
	}
	return r, nil
}

// class is example i's class c: its label ("" without classes) and score
// (0 without scores), as TF Serving fills a Class.
func (r *exampleResults) class(i int, c int64) (string, float32) {
	k := int64(i)*r.numClasses + c
	label, score := "", float32(0)
	if r.labels != nil {
		label = string(r.labels[k])
	}
	if r.scores != nil {
		score = r.scores[k]
	}
	return label, score
}

func classifyJSON(r *exampleResults) (string, error) {
	if r.n == 0 {
		return "", statusf(InvalidArgument, "Cannot convert empty ClassificationResults to JSON")
	}
	var b strings.Builder
	b.WriteString(`{"results": [`)
	for i := 0; i < r.n; i++ {
		if i > 0 {
			b.WriteString(",\n    ")
		}
		b.WriteByte('[')
		for c := int64(0); c < r.numClasses; c++ {
			if c > 0 {
				b.WriteString(", ")
			}
			label, score := r.class(i, c)
			b.WriteByte('[')
			writeJSONString(&b, label)
			b.WriteString(", ")
			writeFloat(&b, float64(score), 32)
			b.WriteByte(']')
		}
		b.WriteByte(']')
	}
	b.WriteString("]}\n")
	return b.String(), nil
}

func regressValues(out *tfgo.Tensor, n int) (*exampleResults, error) {
	sh := out.Shape()
	if !(len(sh) == 1 || len(sh) == 2 && sh[1] == 1) {
		return nil, statusf(InvalidArgument, "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got %s", shapeString(sh))
	}
	if sh[0] != int64(n) {
		return nil, statusf(InvalidArgument, "Input batch size did not match output batch size: %d vs. %d", n, sh[0])
	}
	if out.DataType() != tfgo.Float {
		return nil, statusf(InvalidArgument, "Expected output Tensor of DT_FLOAT.  Got: %s", dtName(out.DataType()))
	}
	vals, err := tfgo.Float32s(out)
	if err != nil {
		return nil, statusf(Internal, "outputs: %v", err)
	}
	return &exampleResults{n: n, values: vals}, nil
}

func regressJSON(r *exampleResults) string {
	var b strings.Builder
	b.WriteString(`{"results": [`)
	for i, v := range r.values {
		if i > 0 {
			b.WriteString(", ")
		}
		writeFloat(&b, float64(v), 32)
	}
	b.WriteString("]}\n")
	return b.String()
}

// dtName is the DataType enum's name (DT_FLOAT), as DataType_Name prints it.
func dtName(dt tfgo.DataType) string { return dt.Proto().String() }
