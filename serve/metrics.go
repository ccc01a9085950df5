package serve

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gotf/gotf/serve/tfserving"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// serverMetrics are TF Serving's metrics, under the names its Prometheus
// exporter gives them (the monitoring name with '/' made ':'), in a
// registry of the server's own, with the process and Go runtime
// collectors.
type serverMetrics struct {
	reg            *prometheus.Registry
	requestCount   *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
	runtimeLatency *prometheus.HistogramVec
	// batching_session metrics (batching_session.cc, batching_util.h).
	queuingLatency     *prometheus.HistogramVec
	wrappedRunCount    prometheus.Counter
	inputBatchSize     prometheus.Histogram
	processedBatchSize prometheus.Histogram
	paddingSize        *prometheus.HistogramVec
}

func newServerMetrics(batching bool) *serverMetrics {
	m := &serverMetrics{reg: prometheus.NewRegistry()}
	// TF's Buckets::Exponential(10, 1.8, 33): microseconds, up to ~20 min.
	latency := prometheus.ExponentialBuckets(10, 1.8, 33)
	m.requestCount = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ":tensorflow:serving:request_count", Help: "The total number of requests.",
	}, []string{"model_name", "status"})
	m.requestLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    ":tensorflow:serving:request_latency",
		Help:    "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
		Buckets: latency,
	}, []string{"model_name", "API", "entrypoint"})
	m.runtimeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    ":tensorflow:serving:runtime_latency",
		Help:    "Distribution of wall time (in microseconds) for Tensorflow runtime.",
		Buckets: latency,
	}, []string{"model_name", "API", "runtime"})
	m.reg.MustRegister(m.requestCount, m.requestLatency, m.runtimeLatency,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	if !batching {
		return m
	}
	sizes := prometheus.ExponentialBuckets(1, 2, 14)
	m.queuingLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    ":tensorflow:serving:batching_session:queuing_latency",
		Help:    "Distribution of wall time spent (in microseconds) in queuing",
		Buckets: prometheus.ExponentialBuckets(100, 1.2, 52),
	}, []string{"thread_pool_name"})
	m.wrappedRunCount = prometheus.NewCounter(prometheus.CounterOpts{
		Name: ":tensorflow:serving:batching_session:wrapped_run_count",
		Help: "Total count of run calls on the wrapped session",
	})
	m.inputBatchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    ":tensorflow:serving:batching_session:input_batch_size",
		Help:    "Tracks the batch size distribution on the inputs.",
		Buckets: sizes,
	})
	m.processedBatchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    ":tensorflow:serving:batching_session:processed_batch_size",
		Help:    "Tracks the batch size distribution on processing.",
		Buckets: sizes,
	})
	m.paddingSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    ":tensorflow:serving:batching_session:padding_size",
		Help:    "Tracks the padding size distribution on batches.",
		Buckets: sizes,
	}, []string{"execution_batch_size"})
	m.reg.MustRegister(m.queuingLatency, m.wrappedRunCount, m.inputBatchSize, m.processedBatchSize, m.paddingSize)
	return m
}

func micros(d time.Duration) float64 { return float64(d.Microseconds()) }

// serverExtras are a Server's metrics and batcher, made by New.
type serverExtras struct {
	metrics     *serverMetrics
	handler     http.Handler
	metricsPath string
	batcher     *batcher // nil without Config.Batching
}

// ext is s's metrics and batcher.
func (s *Server) ext() *serverExtras { return s.extras }

// newServerExtras makes the metrics and batcher of a checked Config.
func newServerExtras(cfg Config, log *slog.Logger) *serverExtras {
	e := &serverExtras{metrics: newServerMetrics(cfg.Batching != nil), metricsPath: cfg.Monitoring.metricsPath()}
	e.handler = promhttp.HandlerFor(e.metrics.reg, promhttp.HandlerOpts{})
	if cfg.Batching != nil {
		e.batcher = newBatcher(*cfg.Batching, inputLimit(cfg), e.metrics, log)
	}
	return e
}

// serveMetrics answers a scrape of the metrics path (any method but the
// path's, as TF Serving's handler); it reports whether it did.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) bool {
	e := s.ext()
	if e.metricsPath == "" || r.URL.Path != e.metricsPath {
		return false
	}
	e.handler.ServeHTTP(w, r)
	return true
}

// unconfiguredModel is the model_name label of requests for a model the
// server does not serve.
const unconfiguredModel = "<unconfigured>"

// metricsModel is the model_name label of a request for model: its name
// when the server is configured with it, else unconfiguredModel. TF
// Serving labels with whatever name came; here a client sending names at
// random would grow the metrics without bound.
func (s *Server) metricsModel(model string) string {
	if s.models.configured(model) {
		return model
	}
	return unconfiguredModel
}

// requestInfo tells a run which API it serves (for runtime_latency's API
// label) and whether it may be batched (predict only).
type requestInfo struct {
	api   string
	batch bool
}

type requestInfoKey struct{}

func withRequestInfo(ctx context.Context, api string) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, requestInfo{api: api, batch: api == "Predict"})
}

func requestInfoOf(ctx context.Context) requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(requestInfo)
	if ri.api == "" {
		ri.api = "Predict"
	}
	return ri
}

// apiNames are the runtime_latency API labels of the REST methods.
var apiNames = map[string]string{"predict": "Predict", "classify": "Classify", "regress": "Regress"}

// observeREST starts the metrics of a /v1/ request as TF Serving's HTTP
// server keeps them: request_count by model and status for every request,
// request_latency (API the path's method, entrypoint REST) for the ones
// that succeed. It returns the request to handle (its context tells the
// run its API) and the function to call with the handler's error.
func (s *Server) observeREST(r *http.Request, path string) (*http.Request, func(error)) {
	start := time.Now()
	var model, method string
	if m := predictPath.FindStringSubmatch(path); m != nil {
		model, method = m[1], strings.ToLower(m[4])
	} else if m := statusPath.FindStringSubmatch(path); m != nil {
		model = m[1]
	}
	if name, err := url.PathUnescape(model); err == nil {
		model = name
	}
	model = s.metricsModel(model)
	if api, ok := apiNames[method]; ok && r.Method == http.MethodPost {
		r = r.WithContext(withRequestInfo(r.Context(), api))
	}
	m := s.ext().metrics
	return r, func(err error) {
		code := OK
		if err != nil {
			code = statusOf(err).Code
		}
		if code == OK {
			m.requestLatency.WithLabelValues(model, method, "REST").Observe(micros(time.Since(start)))
		}
		m.requestCount.WithLabelValues(model, codeName(code)).Inc()
	}
}

// grpcMetrics is the unary interceptor that keeps TF Serving's metrics of
// PredictionService's Predict, Classify and Regress (request_count by
// model and status, request_latency of the ones that succeed with
// entrypoint GRPC), and tells the run its API.
func (s *Server) grpcMetrics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	const svc = "/tensorflow.serving.PredictionService/"
	api, ok := strings.CutPrefix(info.FullMethod, svc)
	if !ok || (api != "Predict" && api != "Classify" && api != "Regress") {
		if ok && api == "MultiInference" {
			ctx = withRequestInfo(ctx, api)
		}
		return handler(ctx, req)
	}
	start := time.Now()
	res, err := handler(withRequestInfo(ctx, api), req)
	var model string
	if r, ok := req.(interface{ GetModelSpec() *tfserving.ModelSpec }); ok {
		model = s.metricsModel(r.GetModelSpec().GetName())
	}
	m := s.ext().metrics
	code := Code(status.Code(err))
	if code == OK {
		m.requestLatency.WithLabelValues(model, api, "GRPC").Observe(micros(time.Since(start)))
	}
	m.requestCount.WithLabelValues(model, codeName(code)).Inc()
	return res, err
}

// observeRun records a session run's runtime_latency (TF Serving's
// runtime "TF1", its session runs) when it succeeded.
func (s *Server) observeRun(ctx context.Context, model string, start time.Time, err error) {
	if err != nil {
		return
	}
	s.ext().metrics.runtimeLatency.WithLabelValues(model, requestInfoOf(ctx).api, "TF1").Observe(micros(time.Since(start)))
}
