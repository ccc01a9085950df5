// Package tfserving is TensorFlow Serving's gRPC API (tensorflow.serving:
// PredictionService, ModelService and their messages, ModelServerConfig),
// generated from TF Serving's own .proto files in serve/proto. TensorFlow's
// messages in it (TensorProto, SignatureDef, Example) are graft's types.
package tfserving

//go:generate bash ../../scripts/gen_serve.sh
