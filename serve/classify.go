package serve

import (
	"context"
	"strconv"
	"strings"

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
// regress request into serialized tf.Examples, the string tensor such
// signatures take. The context's bytes come before each example's: parsing
// the concatenation merges them, as TF Serving's InputToSerializedExampleTensor
// relies on.
func serializedExamples(doc *jvalue, classify bool) (*tfgo.Tensor, int, error) {
	var context []byte
	if c := doc.member("context"); c != nil {
		ex, err := exampleFromJSON(c)
		if err != nil {
			return nil, 0, err
		}
		if context, err = proto.Marshal(ex); err != nil {
			return nil, 0, statusf(Internal, "serializing the context: %v", err)
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
	ser := make([][]byte, len(list.arr))
	for i := range list.arr {
		ex, err := exampleFromJSON(&list.arr[i])
		if err != nil {
			return nil, 0, err
		}
		b, err := proto.Marshal(ex)
		if err != nil {
			return nil, 0, statusf(Internal, "serializing example %d: %v", i, err)
		}
		ser[i] = append(append([]byte(nil), context...), b...)
	}
	t, err := tfgo.NewStringTensor([]int64{int64(len(ser))}, ser)
	if err != nil {
		return nil, 0, statusf(Internal, "examples tensor: %v", err)
	}
	return t, len(ser), nil
}

// classifyOrRegress answers :classify and :regress: the signature must
// take one input "inputs" (serialized tf.Examples) and give "classes"
// and/or "scores" (classify) or "outputs" (regress), checked as TF
// Serving's PreProcessClassification / PreProcessRegression check them.
func (s *Server) classifyOrRegress(ctx context.Context, sp spec, doc *jvalue, classify bool) (string, error) {
	h, sigName, err := s.acquireFor(sp, doc)
	if err != nil {
		return "", err
	}
	defer h.release()
	if sigName == "" {
		sigName = DefaultSignature
	}
	sig, ok := h.model.Signature(sigName)
	if !ok {
		return "", statusf(InvalidArgument, "No signature was found with the name: %s", sigName)
	}
	if len(sig.Inputs) != 1 {
		return "", statusf(InvalidArgument, "Expected one input Tensor.")
	}
	if classify {
		if n := len(sig.Outputs); n != 1 && n != 2 {
			return "", statusf(InvalidArgument, "Expected one or two output Tensors, found %d", n)
		}
		if _, ok := sig.Inputs[classifyInputs]; !ok {
			return "", statusf(InvalidArgument, "No classification inputs found in SignatureDef: %s", sig)
		}
		_, hasClasses := sig.Outputs[classifyClasses]
		_, hasScores := sig.Outputs[classifyScores]
		if !hasClasses && !hasScores {
			return "", statusf(InvalidArgument, "Expected classification signature outputs to contain at least one of \"classes\" or \"scores\". Signature was: %s", sig)
		}
	} else {
		if len(sig.Outputs) != 1 {
			return "", statusf(InvalidArgument, "Expected one output Tensor.")
		}
		if _, ok := sig.Inputs[regressInputs]; !ok {
			return "", statusf(InvalidArgument, "No regression inputs found in SignatureDef: %s", sig)
		}
		if _, ok := sig.Outputs[regressOutputs]; !ok {
			return "", statusf(InvalidArgument, "No regression outputs found in SignatureDef: %s", sig)
		}
	}
	in, n, err := serializedExamples(doc, classify)
	if err != nil {
		return "", err
	}
	defer in.Close()
	outs, err := s.runSignature(ctx, h, sigName, sig, requestTensors{classifyInputs: in})
	if err != nil {
		return "", err
	}
	defer closeAll(outs)
	if classify {
		return classifyResults(outs[classifyClasses], outs[classifyScores], n)
	}
	return regressResults(outs[regressOutputs], n)
}

func classifyResults(classes, scores *tfgo.Tensor, n int) (string, error) {
	var labels [][]byte
	var sc []float32
	numClasses := int64(0)
	if classes != nil {
		sh := classes.Shape()
		if len(sh) != 2 {
			return "", statusf(InvalidArgument, "Expected Tensor shape: [batch_size num_classes] but got %s", shapeString(sh))
		}
		if classes.DataType() != tfgo.String {
			return "", statusf(InvalidArgument, "Expected classes Tensor of DT_STRING. Got: %s", dtName(classes.DataType()))
		}
		if sh[0] != int64(n) {
			return "", statusf(InvalidArgument, "Expected classes output batch size of %d. Got: %d", n, sh[0])
		}
		var err error
		if labels, err = classes.Strings(); err != nil {
			return "", statusf(Internal, "classes: %v", err)
		}
		numClasses = sh[1]
	}
	if scores != nil {
		sh := scores.Shape()
		if len(sh) != 2 {
			return "", statusf(InvalidArgument, "Expected Tensor shape: [batch_size num_classes] but got %s", shapeString(sh))
		}
		if scores.DataType() != tfgo.Float {
			return "", statusf(InvalidArgument, "Expected scores Tensor of DT_FLOAT. Got: %s", dtName(scores.DataType()))
		}
		if sh[0] != int64(n) {
			return "", statusf(InvalidArgument, "Expected scores output batch size of %d. Got: %d", n, sh[0])
		}
		if classes != nil && sh[1] != numClasses {
			return "", statusf(InvalidArgument, "Tensors class and score should match in dim_size(1). Got %d vs. %d", numClasses, sh[1])
		}
		var err error
		if sc, err = tfgo.Float32s(scores); err != nil {
			return "", statusf(Internal, "scores: %v", err)
		}
		numClasses = sh[1]
	}
	if n == 0 {
		return "", statusf(InvalidArgument, "Cannot convert empty ClassificationResults to JSON")
	}
	var b strings.Builder
	b.WriteString(`{"results": [`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n    ")
		}
		b.WriteByte('[')
		for c := int64(0); c < numClasses; c++ {
			if c > 0 {
				b.WriteString(", ")
			}
			k := int64(i)*numClasses + c
			label := ""
			if labels != nil {
				label = string(labels[k])
			}
			score := float32(0)
			if sc != nil {
				score = sc[k]
			}
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

func regressResults(out *tfgo.Tensor, n int) (string, error) {
	sh := out.Shape()
	if !(len(sh) == 1 || len(sh) == 2 && sh[1] == 1) {
		return "", statusf(InvalidArgument, "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got %s", shapeString(sh))
	}
	if sh[0] != int64(n) {
		return "", statusf(InvalidArgument, "Input batch size did not match output batch size: %d vs. %d", n, sh[0])
	}
	if out.DataType() != tfgo.Float {
		return "", statusf(InvalidArgument, "Expected output Tensor of DT_FLOAT.  Got: %s", dtName(out.DataType()))
	}
	vals, err := tfgo.Float32s(out)
	if err != nil {
		return "", statusf(Internal, "outputs: %v", err)
	}
	var b strings.Builder
	b.WriteString(`{"results": [`)
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		writeFloat(&b, float64(v), 32)
	}
	b.WriteString("]}\n")
	return b.String(), nil
}

// dtName is the DataType enum's name (DT_FLOAT), as DataType_Name prints it.
func dtName(dt tfgo.DataType) string { return dt.Proto().String() }
