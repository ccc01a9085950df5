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
// Batching (Config.Batching, TF Serving's --enable_batching with the
// BatchingParameters of --batching_parameters_file, read by
// ReadBatchingParametersFile): predict runs, over REST and gRPC, are queued
// per model version, signature, set of inputs (dtype and rank) and set of
// outputs, and a batch thread (num_batch_threads over every queue) merges
// a queue's requests along dimension 0 into one session run and splits the
// outputs back, as TF Serving's batching session does on its shared batch
// scheduler: a batch runs when it holds max_batch_size rows, when a later
// request did not fit it, or batch_timeout_micros after its first request
// (0: as soon as a thread is free, so requests merge only while every
// thread is busy). allowed_batch_sizes pads a batch up to the next allowed
// size with copies of the first row of its last request, and
// pad_variable_length_inputs pads the dimensions past the first of every
// input to the batch's largest with the input's first element (TF
// Serving's choice: a model must not care). As in TF Serving, inputs
// without dimension 0 or with different sizes of it, and a request of more
// than max_batch_size rows, are refused (InvalidArgument); a request that
// would need more than max_enqueued_batches waiting batches is refused
// with ResourceExhausted (429) "The batch scheduling queue to which this
// task was submitted is full"; an output without dimension 0 or of the
// wrong size fails its batch (FailedPrecondition). A request whose
// deadline passes while it waits leaves the queue with DeadlineExceeded.
// Fields this server does not implement (enable_large_batch_splitting,
// max_execution_batch_size, and those its copy of the message lacks, such
// as the batch padding and priority policies) are refused by name. Differs
// from TF Serving: classify, regress and multi_inference run unbatched;
// inputs of dtypes without a fixed size (other than strings) run alone;
// without pad_variable_length_inputs, requests whose shapes past dimension
// 0 differ go to different queues instead of failing a merged batch
// (FailedPrecondition in TF Serving); a batch's run is bounded by the
// smallest deadline of its requests (TF Serving takes the largest and
// lets the others wait past theirs); a full queue is ResourceExhausted
// (older TensorFlow batch schedulers said Unavailable). A queued request
// holds its model version, so a version is unloaded only after the
// batches holding its requests have run, and Close drains the queues.
//
// Metrics: the REST port answers Prometheus scrapes at
// /monitoring/prometheus/metrics (Config.Monitoring, TF Serving's
// --monitoring_config_file read by ReadMonitoringConfigFile, changes the
// path or turns it off), in a registry of the server's own, under TF
// Serving's names and labels: :tensorflow:serving:request_count
// (model_name, status: every /v1 REST request and every gRPC Predict,
// Classify and Regress), :tensorflow:serving:request_latency (model_name,
// API, entrypoint REST or GRPC: the successful ones; API is the REST
// path's method, empty for status and metadata, or the gRPC method),
// :tensorflow:serving:runtime_latency (model_name, API, runtime "TF1":
// successful session runs, queuing included when batched, as there), all
// in microseconds with TF's buckets (10 * 1.8^i, 33), and with batching
// :tensorflow:serving:batching_session:{queuing_latency (thread_pool_name),
// wrapped_run_count, input_batch_size, processed_batch_size, padding_size
// (execution_batch_size)}; plus the process (process_resident_memory_bytes,
// process_cpu_seconds_total, ...) and Go runtime (go_*) collectors. Differs
// from TF Serving: the endpoint is on by default (TF Serving needs the
// monitoring file), TensorFlow's own runtime metrics (graph runs, op
// counts) are not exported, warm-up runs count in runtime_latency as
// Predict whatever their API, and a request for a model the server is not
// configured with is labelled model_name "<unconfigured>" (TF Serving uses
// the name sent, so random names grow its metrics without bound).
//
// Where it differs from TF Serving on purpose: request bodies and gRPC
// messages are bounded (Config.MaxRequestBytes) and so is the JSON in them (values, depth), checked
// while parsing, so a request cannot make the server allocate more than the
// limits; an integer out of a narrow dtype's range is refused instead of
// wrapped; a /labels/{l} status request answers for the label's version
// (TF Serving lists every version).
package serve
