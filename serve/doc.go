// Package serve is a model server that speaks TensorFlow Serving's REST and
// gRPC APIs, on TensorFlow's own SavedModel loader (package
// savedmodel/runner): existing clients, load balancers and dashboards keep
// working when the C++ tensorflow_model_server is swapped for a Go binary
// (cmd/gotf-serve).
//
// What it answers, as TF Serving does (its api_rest.md, and the handlers
// http_rest_api_handler.cc and json_tensor.cc):
//
//	GET  /v1/models/{m}[/versions/{v}|/labels/{l}]            model_version_status
//	GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata   signature_def
//	POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict    instances or inputs
//	POST /v1/models/{m}[/versions/{v}|/labels/{l}]:classify   examples -> results
//	POST /v1/models/{m}[/versions/{v}|/labels/{l}]:regress    examples -> results
//
// Requests and answers are TF Serving's JSON: NaN, Infinity and -Infinity
// are numbers, {"b64": "..."} carries binary strings, and outputs whose
// names end in _bytes are written that way. Errors are {"error": "..."}
// with TF Serving's messages and its mapping of status codes to HTTP
// statuses (InvalidArgument 400, NotFound 404, ResourceExhausted 429,
// Unavailable 503, DeadlineExceeded 504, ...).
//
// Over gRPC (Server.ServeGRPC) it answers tensorflow.serving.PredictionService
// (Predict, Classify, Regress, MultiInference, GetModelMetadata) and
// ModelService (GetModelStatus, HandleReloadConfigRequest) with the messages
// of package tfserving, generated from TF Serving's own .proto files, plus
// grpc.health.v1 and server reflection. Both APIs share the model manager,
// the signature checks and the runs, and errors carry the same canonical
// codes (as gRPC status codes, which are numbered alike).
//
// Inputs are checked against the signature's names and dtypes; their
// shapes are left to the runtime, as TF Serving leaves them (its own
// documentation feeds [3] to half_plus_three's [?, 1] input), so a shape
// the graph cannot take is the runtime's InvalidArgument.
//
// Every model has a base directory that is polled for numeric version
// subdirectories; a version policy (latest N, all, specific) picks the
// ones served. New versions are loaded before old ones are unloaded, and an
// old version is closed only after the requests using it are done.
//
// Where it differs from TF Serving on purpose: request bodies and gRPC
// messages are bounded (Config.MaxRequestBytes) and so is the JSON in them (values, depth), checked
// while parsing, so a request cannot make the server allocate more than the
// limits; an integer out of a narrow dtype's range is refused instead of
// wrapped; a /labels/{l} status request answers for the label's version
// (TF Serving lists every version).
package serve
