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
// Config.VersionTransition chooses between TF Serving's two aspired-version
// policies. AvailabilityPreserving (the default) loads a new version
// before it unloads the old one, and keeps the old one serving while no
// aspired version is available (a new version that failed to load).
// ResourcePreserving unloads the old version first, after its requests
// are done, so that one version's memory suffices; in between, requests
// for the model are NotFound, as in TF Serving.
//
// Warm-up: as tensorflow_model_server with --enable_model_warmup (its
// default), a version whose directory holds
// assets.extra/tf_serving_warmup_requests (TFRecords of PredictionLog, as
// TF Serving's documentation writes them with tf.io.TFRecordWriter) has
// its predict, classify, regress and multi_inference records replayed on
// it before it becomes AVAILABLE, each Config.WarmupIterations times,
// through the handlers real gRPC requests take; the ModelSpec's name is
// ignored, as there. A session_run or predict_streamed record, more than
// 1000 records, a record that is not a PredictionLog, a damaged TFRecord
// or a failing request fails the load with an error naming the file and
// the record (the version is END, retried as any failed load); a record's
// length is checked against the file's size before it is read.
// Config.DisableModelWarmup turns warm-up off.
//
// Health: the REST port answers GET /healthz and /livez (liveness) with
// 200 {"status": "ok"} whenever the process answers, and /readyz
// (readiness) with 200 once every model has a version AVAILABLE and none
// starting or loading (warm-up included), or 503 {"status": "not ready",
// "reason": ...} naming the models that are not and why, and after Close
// has begun. The gRPC health service's overall status ("") follows
// readiness (NOT_SERVING until ready); the status of the two TF Serving
// services is SERVING while the server runs. A version that failed while
// another of its model is available does not hold readiness back.
//
// Where it differs from TF Serving on purpose: request bodies and gRPC
// messages are bounded (Config.MaxRequestBytes) and so is the JSON in them (values, depth), checked
// while parsing, so a request cannot make the server allocate more than the
// limits; an integer out of a narrow dtype's range is refused instead of
// wrapped; a /labels/{l} status request answers for the label's version
// (TF Serving lists every version).
package serve
