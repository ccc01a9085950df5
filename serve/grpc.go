package serve

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/gotf/gotf/serve/tfserving"
	"github.com/gotf/gotf/tfgo"
	expb "github.com/wamuir/graft/tensorflow/core/example/example_protos_go_proto"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	errpb "github.com/wamuir/graft/tensorflow/tsl/protobuf/for_core_protos_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TF Serving's method names of classification and regression
// (tensorflow/cc/saved_model/signature_constants.h), which
// MultiInferenceRequest tasks name.
const (
	classifyMethodName = "tensorflow/serving/classify"
	regressMethodName  = "tensorflow/serving/regress"
)

// grpcAPI answers TF Serving's gRPC services with the same model manager,
// signature checks and runs as the REST API.
type grpcAPI struct {
	tfserving.UnimplementedPredictionServiceServer
	tfserving.UnimplementedModelServiceServer
	s *Server
	// warming, when set, is the version under warm-up: every request runs
	// on it, whatever its ModelSpec names, as TF Serving's warm-up runs on
	// the session it has just loaded.
	warming *handle
}

// ServeGRPC answers TF Serving's gRPC API on l until Close:
// tensorflow.serving.PredictionService (Predict, Classify, Regress,
// MultiInference, GetModelMetadata), tensorflow.serving.ModelService
// (GetModelStatus, HandleReloadConfigRequest), grpc.health.v1.Health and
// server reflection. It returns nil after Close.
func (s *Server) ServeGRPC(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return grpc.ErrServerStopped
	}
	if s.grpc == nil {
		// Messages are bounded as REST bodies are (TF Serving's own bound is
		// INT_MAX): a request is decoded whole before anything checks it.
		s.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(int(min(s.cfg.MaxRequestBytes, 1<<31-1))), grpc.UnaryInterceptor(s.grpcMetrics))
		api := &grpcAPI{s: s}
		tfserving.RegisterPredictionServiceServer(s.grpc, api)
		tfserving.RegisterModelServiceServer(s.grpc, api)
		s.health = health.NewServer()
		// The server's overall status ("") is its readiness (updateHealth).
		s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		for _, name := range []string{tfserving.PredictionService_ServiceDesc.ServiceName, tfserving.ModelService_ServiceDesc.ServiceName} {
			s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
		healthpb.RegisterHealthServer(s.grpc, s.health)
		reflection.Register(s.grpc)
	}
	gs := s.grpc
	s.mu.Unlock()
	s.updateHealth()
	return gs.Serve(l)
}

// stopGRPC tells health checkers the server is going, lets calls under
// way finish until ctx is done, and then cuts the rest.
func (s *Server) stopGRPC(ctx context.Context, gs *grpc.Server, hs *health.Server) error {
	if gs == nil {
		return nil
	}
	hs.Shutdown()
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		gs.Stop()
		<-done
		return fmt.Errorf("serve: stopping the gRPC server: %w", ctx.Err())
	}
}

// grpcError is an error as a gRPC status: TF Serving's canonical codes are
// gRPC's, number for number.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	st := statusOf(err)
	return status.Error(codes.Code(st.Code), st.Message)
}

// specOf reads a request's ModelSpec: a version, a label, or neither (the
// latest available).
func specOf(ms *tfserving.ModelSpec) (spec, error) {
	if ms == nil {
		return spec{}, statusf(InvalidArgument, "Missing ModelSpec")
	}
	sp := spec{model: ms.GetName()}
	switch v := ms.GetVersionChoice().(type) {
	case *tfserving.ModelSpec_Version:
		if v.Version != nil {
			n := v.Version.GetValue()
			sp.version = &n
		}
	case *tfserving.ModelSpec_VersionLabel:
		sp.label = v.VersionLabel
	}
	return sp, nil
}

// acquire holds the version a ModelSpec asks for; release it when done.
func (g *grpcAPI) acquire(ms *tfserving.ModelSpec) (*handle, error) {
	if g.warming != nil {
		return g.warming.hold(), nil
	}
	sp, err := specOf(ms)
	if err != nil {
		return nil, err
	}
	return g.s.models.acquire(sp)
}

// modelSpec is the ModelSpec of an answer, as TF Serving's MakeModelSpec.
func modelSpec(name, signature string, version int64) *tfserving.ModelSpec {
	return &tfserving.ModelSpec{Name: name, SignatureName: signature,
		VersionChoice: &tfserving.ModelSpec_Version{Version: wrapperspb.Int64(version)}}
}

// withTimeout bounds a run as REST runs are; a shorter client deadline
// wins.
func (g *grpcAPI) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.s.cfg.RequestTimeout > 0 {
		return context.WithTimeout(ctx, g.s.cfg.RequestTimeout)
	}
	return ctx, func() {}
}

func (g *grpcAPI) Predict(ctx context.Context, req *tfserving.PredictRequest) (*tfserving.PredictResponse, error) {
	res, err := g.predict(ctx, req)
	return res, grpcError(err)
}

func (g *grpcAPI) predict(ctx context.Context, req *tfserving.PredictRequest) (*tfserving.PredictResponse, error) {
	h, err := g.acquire(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	defer h.release()
	name, sig, err := predictSignature(h, req.GetModelSpec().GetSignatureName())
	if err != nil {
		return nil, err
	}
	// Unknown names are refused with TF Serving's message before any
	// tensor is made.
	if err := checkInputNames(sig, req.GetInputs()); err != nil {
		return nil, err
	}
	filter, err := outputFilter(req.GetOutputFilter())
	if err != nil {
		return nil, err
	}
	limit := inputLimit(g.s.cfg)
	inputs := make(requestTensors, len(req.GetInputs()))
	defer inputs.Close()
	for _, k := range sortedNames(req.GetInputs()) {
		t, err := tensorFromProto(k, req.GetInputs()[k], limit)
		if err != nil {
			return nil, err
		}
		inputs[k] = t
	}
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	outs, err := g.s.runSignature(ctx, h, name, sig, inputs, filter)
	if err != nil {
		return nil, err
	}
	defer closeAll(outs)
	res := &tfserving.PredictResponse{ModelSpec: modelSpec(h.name, name, h.version), Outputs: make(map[string]*tpb.TensorProto, len(outs))}
	for _, k := range sortedNames(outs) { // the first refused output, always the same
		t := outs[k]
		if dt := t.DataType(); dt == tfgo.Resource || dt == tfgo.Variant {
			// The runtime hands these over as C++ objects (pointers
			// included), not as bytes a client could read.
			return nil, statusf(Unimplemented, "output %q is a %s tensor, which this server does not send; leave it out with output_filter", k, dt)
		}
		tp, err := tensorProto(t)
		if err != nil {
			return nil, statusf(Internal, "output %q: %v", k, err)
		}
		res.Outputs[k] = tp
	}
	return res, nil
}

// outputFilter refuses a name given twice, as TF Serving's
// PreProcessPrediction does; names not in the signature are refused by
// runSignature.
func outputFilter(names []string) ([]string, error) {
	seen := make(map[string]bool, len(names))
	for _, k := range names {
		if seen[k] {
			return nil, statusf(InvalidArgument, "duplicate output tensor name: %s", k)
		}
		seen[k] = true
	}
	return names, nil
}

// examplesOf is a gRPC Input's examples, with the context of an
// ExampleListWithContext.
func examplesOf(in *tfserving.Input) (*expb.Example, []*expb.Example, error) {
	var ctx *expb.Example
	var exs []*expb.Example
	switch k := in.GetKind().(type) {
	case *tfserving.Input_ExampleList:
		exs = k.ExampleList.GetExamples()
	case *tfserving.Input_ExampleListWithContext:
		exs, ctx = k.ExampleListWithContext.GetExamples(), k.ExampleListWithContext.GetContext()
	}
	if len(exs) == 0 {
		return nil, nil, statusf(InvalidArgument, "Input is empty.")
	}
	return ctx, exs, nil
}

// runExamplesFor runs a classify or regress signature of a held version on
// a gRPC Input, as the REST API runs it on JSON examples.
func (g *grpcAPI) runExamplesFor(ctx context.Context, h *handle, sigName string, in *tfserving.Input, classify bool) (string, *exampleResults, error) {
	sigName, sig, err := exampleSignature(h, sigName, classify)
	if err != nil {
		return "", nil, err
	}
	exCtx, exs, err := examplesOf(in)
	if err != nil {
		return "", nil, err
	}
	t, n, err := examplesTensor(exCtx, exs)
	if err != nil {
		return "", nil, err
	}
	defer t.Close()
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	res, err := g.s.runExamples(ctx, h, sigName, sig, t, n, classify)
	return sigName, res, err
}

func classificationResult(r *exampleResults) *tfserving.ClassificationResult {
	out := &tfserving.ClassificationResult{Classifications: make([]*tfserving.Classifications, r.n)}
	for i := range out.Classifications {
		cs := &tfserving.Classifications{Classes: make([]*tfserving.Class, r.numClasses)}
		for c := range cs.Classes {
			label, score := r.class(i, int64(c))
			cs.Classes[c] = &tfserving.Class{Label: label, Score: score}
		}
		out.Classifications[i] = cs
	}
	return out
}

func regressionResult(r *exampleResults) *tfserving.RegressionResult {
	out := &tfserving.RegressionResult{Regressions: make([]*tfserving.Regression, len(r.values))}
	for i, v := range r.values {
		out.Regressions[i] = &tfserving.Regression{Value: v}
	}
	return out
}

func (g *grpcAPI) Classify(ctx context.Context, req *tfserving.ClassificationRequest) (*tfserving.ClassificationResponse, error) {
	res, err := g.classifyOrRegress(ctx, req.GetModelSpec(), req.GetInput(), true)
	if err != nil {
		return nil, grpcError(err)
	}
	return &tfserving.ClassificationResponse{ModelSpec: res.GetModelSpec(), Result: res.GetClassificationResult()}, nil
}

func (g *grpcAPI) Regress(ctx context.Context, req *tfserving.RegressionRequest) (*tfserving.RegressionResponse, error) {
	res, err := g.classifyOrRegress(ctx, req.GetModelSpec(), req.GetInput(), false)
	if err != nil {
		return nil, grpcError(err)
	}
	return &tfserving.RegressionResponse{ModelSpec: res.GetModelSpec(), Result: res.GetRegressionResult()}, nil
}

func (g *grpcAPI) classifyOrRegress(ctx context.Context, ms *tfserving.ModelSpec, in *tfserving.Input, classify bool) (*tfserving.InferenceResult, error) {
	h, err := g.acquire(ms)
	if err != nil {
		return nil, err
	}
	defer h.release()
	sigName, r, err := g.runExamplesFor(ctx, h, ms.GetSignatureName(), in, classify)
	if err != nil {
		return nil, err
	}
	return inferenceResult(h, sigName, r, classify), nil
}

func inferenceResult(h *handle, sigName string, r *exampleResults, classify bool) *tfserving.InferenceResult {
	res := &tfserving.InferenceResult{ModelSpec: modelSpec(h.name, sigName, h.version)}
	if classify {
		res.Result = &tfserving.InferenceResult_ClassificationResult{ClassificationResult: classificationResult(r)}
	} else {
		res.Result = &tfserving.InferenceResult_RegressionResult{RegressionResult: regressionResult(r)}
	}
	return res
}

// MultiInference runs several classify and regress signatures of one
// model version on one Input, checked as TF Serving's
// TensorFlowMultiInferenceRunner checks its tasks. Each signature is a
// session run of its own (TF Serving merges them into one run); the results
// are the same.
func (g *grpcAPI) MultiInference(ctx context.Context, req *tfserving.MultiInferenceRequest) (*tfserving.MultiInferenceResponse, error) {
	res, err := g.multiInference(ctx, req)
	return res, grpcError(err)
}

func (g *grpcAPI) multiInference(ctx context.Context, req *tfserving.MultiInferenceRequest) (*tfserving.MultiInferenceResponse, error) {
	tasks := req.GetTasks()
	if len(tasks) == 0 {
		return nil, statusf(InvalidArgument, "MultiInferenceRequest must specify at least one task.")
	}
	first := tasks[0].GetModelSpec()
	seen := map[string]bool{}
	for _, t := range tasks {
		if t.GetModelSpec().GetName() != first.GetName() {
			return nil, statusf(InvalidArgument, "All ModelSpecs in a MultiInferenceRequest must access the same model name.")
		}
		name := t.GetModelSpec().GetSignatureName()
		if name == "" {
			name = DefaultSignature
		}
		if seen[name] {
			return nil, statusf(InvalidArgument, "Duplicate evaluation of signature: %s", name)
		}
		seen[name] = true
		if m := t.GetMethodName(); m != classifyMethodName && m != regressMethodName {
			return nil, statusf(Unimplemented, "Unsupported signature method_name: %s", m)
		}
	}
	h, err := g.acquire(first)
	if err != nil {
		return nil, err
	}
	defer h.release()
	out := &tfserving.MultiInferenceResponse{}
	for _, t := range tasks {
		classify := t.GetMethodName() == classifyMethodName
		sigName, r, err := g.runExamplesFor(ctx, h, t.GetModelSpec().GetSignatureName(), req.GetInput(), classify)
		if err != nil {
			return nil, err
		}
		out.Results = append(out.Results, inferenceResult(h, sigName, r, classify))
	}
	return out, nil
}

func (g *grpcAPI) GetModelMetadata(ctx context.Context, req *tfserving.GetModelMetadataRequest) (*tfserving.GetModelMetadataResponse, error) {
	res, err := g.getModelMetadata(req)
	return res, grpcError(err)
}

// getModelMetadata answers the one metadata field TF Serving knows,
// signature_def, with the SignatureDefs the REST API prints.
func (g *grpcAPI) getModelMetadata(req *tfserving.GetModelMetadataRequest) (*tfserving.GetModelMetadataResponse, error) {
	if len(req.GetMetadataField()) == 0 {
		return nil, statusf(InvalidArgument, "GetModelMetadataRequest must specify at least one metadata_field")
	}
	for _, f := range req.GetMetadataField() {
		if f != "signature_def" {
			return nil, statusf(InvalidArgument, "Metadata field %s is not supported", f)
		}
	}
	sp, err := specOf(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	name, version, defs, err := g.s.signatureDefs(sp)
	if err != nil {
		return nil, err
	}
	any, err := anypb.New(&tfserving.SignatureDefMap{SignatureDef: defs})
	if err != nil {
		return nil, statusf(Internal, "packing the signature defs: %v", err)
	}
	return &tfserving.GetModelMetadataResponse{
		ModelSpec: modelSpec(name, "", version),
		Metadata:  map[string]*anypb.Any{"signature_def": any},
	}, nil
}

func (g *grpcAPI) GetModelStatus(ctx context.Context, req *tfserving.GetModelStatusRequest) (*tfserving.GetModelStatusResponse, error) {
	res, err := g.getModelStatus(req)
	return res, grpcError(err)
}

func (g *grpcAPI) getModelStatus(req *tfserving.GetModelStatusRequest) (*tfserving.GetModelStatusResponse, error) {
	sp, err := specOf(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	vs, err := g.s.models.status(sp)
	if err != nil {
		return nil, err
	}
	res := &tfserving.GetModelStatusResponse{}
	for _, v := range vs {
		st := &tfserving.StatusProto{}
		if v.Err != nil {
			st.ErrorCode, st.ErrorMessage = errpb.Code(v.Err.Code), v.Err.Message
		}
		res.ModelVersionStatus = append(res.ModelVersionStatus, &tfserving.ModelVersionStatus{
			Version: v.Version, State: tfserving.ModelVersionStatus_State(v.State), Status: st,
		})
	}
	return res, nil
}

// HandleReloadConfigRequest makes a model_config_list the set of served
// models, as a reloaded --model_config_file does: the config goes through
// the same reader as the file, so both accept and refuse the same fields.
// As in TF Serving, the status is both in the answer and the call's.
func (g *grpcAPI) HandleReloadConfigRequest(ctx context.Context, req *tfserving.ReloadConfigRequest) (*tfserving.ReloadConfigResponse, error) {
	err := g.reload(req.GetConfig())
	res := &tfserving.ReloadConfigResponse{Status: &tfserving.StatusProto{}}
	if err != nil {
		st := statusOf(err)
		res.Status.ErrorCode, res.Status.ErrorMessage = errpb.Code(st.Code), st.Message
		g.s.log.Error("reloading the model config", "err", st.Message)
		return res, grpcError(err)
	}
	return res, nil
}

func (g *grpcAPI) reload(cfg *tfserving.ModelServerConfig) error {
	list := cfg.GetModelConfigList()
	if list == nil {
		return statusf(InvalidArgument, "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently supported")
	}
	text, err := prototext.Marshal(&tfserving.ModelServerConfig{Config: &tfserving.ModelServerConfig_ModelConfigList{ModelConfigList: list}})
	if err != nil {
		return statusf(Internal, "model config: %v", err)
	}
	models, err := ParseModelConfigList(string(text))
	if err != nil {
		return statusf(InvalidArgument, "%v", err)
	}
	if err := g.s.Reload(models); err != nil {
		var st *Status
		if errors.As(err, &st) {
			return st
		}
		return statusf(InvalidArgument, "%v", err)
	}
	return nil
}
