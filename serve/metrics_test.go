package serve

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotf/gotf/serve/tfserving"
	"github.com/gotf/gotf/tfgo"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// scrape reads the metrics endpoint of s at path and parses it as
// Prometheus' text format.
func scrape(t *testing.T, s *testServer, path string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := s.client.Get(s.url + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return mfs
}

// metricWith is the metric of a family whose labels are exactly labels
// (nil when there is none).
func metricWith(mf *dto.MetricFamily, labels map[string]string) *dto.Metric {
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		ok := true
		for _, lp := range m.GetLabel() {
			if v, has := labels[lp.GetName()]; !has || v != lp.GetValue() {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

func counterValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := metricWith(mfs[name], labels)
	require.NotNil(t, m, "%s%v", name, labels)
	return m.GetCounter().GetValue()
}

func histogramCount(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) uint64 {
	t.Helper()
	m := metricWith(mfs[name], labels)
	require.NotNil(t, m, "%s%v", name, labels)
	return m.GetHistogram().GetSampleCount()
}

// TestPrometheusMetrics sends good and bad requests over REST and gRPC and
// scrapes TF Serving's metrics endpoint: request counts by model and
// status, request latencies of the successful ones by API and entrypoint,
// runtime latencies of the session runs, and the process and Go runtime
// collectors.
func TestPrometheusMetrics(t *testing.T) {
	base := exportTF1Model(t)
	s, addr := startGRPCServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: base}}})
	x := `[[1, 2, 3], [4, 5, 6]]`
	for range 3 {
		code, body := s.post(t, "/v1/models/tf1:predict", `{"instances": `+x+`}`)
		require.Equal(t, http.StatusOK, code, body)
	}
	code, body := s.post(t, "/v1/models/tf1:regress", `{"signature_name": "regress_x", "examples": [{"x": [1.0, 2.5, -1.0]}]}`)
	require.Equal(t, http.StatusOK, code, body)
	code, _ = s.post(t, "/v1/models/tf1:predict", `{"signature_name": "nope", "instances": `+x+`}`)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = s.post(t, "/v1/models/missing:predict", `{"instances": `+x+`}`)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = s.get(t, "/v1/models/tf1")
	require.Equal(t, http.StatusOK, code)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := tfserving.NewPredictionServiceClient(conn)
	xt, err := tfgo.NewTensor([][]float32{{1, 2, 3}})
	require.NoError(t, err)
	tp, err := tensorProto(xt)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 {
		_, err := client.Predict(ctx, &tfserving.PredictRequest{ModelSpec: &tfserving.ModelSpec{Name: "tf1"}, Inputs: map[string]*tpb.TensorProto{"x": tp}})
		require.NoError(t, err)
	}
	_, err = client.Predict(ctx, &tfserving.PredictRequest{ModelSpec: &tfserving.ModelSpec{Name: "tf1"}, Inputs: map[string]*tpb.TensorProto{"wrong": tp}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	// Not counted: metadata is not one of the counted APIs over gRPC.
	_, err = client.GetModelMetadata(ctx, &tfserving.GetModelMetadataRequest{ModelSpec: &tfserving.ModelSpec{Name: "tf1"}, MetadataField: []string{"signature_def"}})
	require.NoError(t, err)

	mfs := scrape(t, s, DefaultMetricsPath)
	const count, reqLat, runLat = ":tensorflow:serving:request_count", ":tensorflow:serving:request_latency", ":tensorflow:serving:runtime_latency"
	require.Equal(t, dto.MetricType_COUNTER, mfs[count].GetType())
	// REST: 3 predicts, a regress and a status request OK; gRPC: 2 predicts.
	require.EqualValues(t, 7, counterValue(t, mfs, count, map[string]string{"model_name": "tf1", "status": "OK"}))
	// A REST and a gRPC InvalidArgument; a REST NotFound.
	require.EqualValues(t, 2, counterValue(t, mfs, count, map[string]string{"model_name": "tf1", "status": "INVALID_ARGUMENT"}))
	require.EqualValues(t, 1, counterValue(t, mfs, count, map[string]string{"model_name": unconfiguredModel, "status": "NOT_FOUND"}))
	require.Len(t, mfs[count].GetMetric(), 3)

	require.Equal(t, dto.MetricType_HISTOGRAM, mfs[reqLat].GetType())
	require.EqualValues(t, 3, histogramCount(t, mfs, reqLat, map[string]string{"model_name": "tf1", "API": "predict", "entrypoint": "REST"}))
	require.EqualValues(t, 1, histogramCount(t, mfs, reqLat, map[string]string{"model_name": "tf1", "API": "regress", "entrypoint": "REST"}))
	require.EqualValues(t, 1, histogramCount(t, mfs, reqLat, map[string]string{"model_name": "tf1", "API": "", "entrypoint": "REST"}))
	require.EqualValues(t, 2, histogramCount(t, mfs, reqLat, map[string]string{"model_name": "tf1", "API": "Predict", "entrypoint": "GRPC"}))
	require.Len(t, mfs[reqLat].GetMetric(), 4, "failed requests have no latency")
	// TF's microsecond buckets: 10 * 1.8^i, 33 of them, and +Inf.
	b := metricWith(mfs[reqLat], map[string]string{"model_name": "tf1", "API": "predict", "entrypoint": "REST"}).GetHistogram().GetBucket()
	require.Len(t, b, 34)
	require.True(t, math.IsInf(b[33].GetUpperBound(), 1))
	require.InDelta(t, 10, b[0].GetUpperBound(), 1e-9)
	require.InDelta(t, 18, b[1].GetUpperBound(), 1e-9)

	require.EqualValues(t, 5, histogramCount(t, mfs, runLat, map[string]string{"model_name": "tf1", "API": "Predict", "runtime": "TF1"}))
	require.EqualValues(t, 1, histogramCount(t, mfs, runLat, map[string]string{"model_name": "tf1", "API": "Regress", "runtime": "TF1"}))

	rss := metricWith(mfs["process_resident_memory_bytes"], map[string]string{})
	require.NotNil(t, rss)
	require.Positive(t, rss.GetGauge().GetValue())
	require.NotNil(t, mfs["go_goroutines"])
	require.NotNil(t, mfs["process_cpu_seconds_total"])
	require.Nil(t, mfs[":tensorflow:serving:batching_session:wrapped_run_count"], "no batching metrics without batching")

	// The text is TF Serving's: names start with ':'.
	resp, err := s.client.Get(s.url + DefaultMetricsPath)
	require.NoError(t, err)
	defer resp.Body.Close()
	text := readAll(t, resp)
	require.Contains(t, text, "\n:tensorflow:serving:request_count{model_name=\"tf1\",status=\"OK\"} 7\n")
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestMetricsWithBatchingAndPaths checks the batching metrics, a metrics
// path of the monitoring config, and the endpoint turned off.
func TestMetricsWithBatchingAndPaths(t *testing.T) {
	base := exportTF1Model(t)
	s := startServer(t, Config{
		Models:     []ModelConfig{{Name: "tf1", BasePath: base}},
		Batching:   &BatchingConfig{MaxBatchSize: 8, NumBatchThreads: 1},
		Monitoring: MonitoringConfig{Path: "/metrics"},
	})
	for range 2 {
		code, body := s.post(t, "/v1/models/tf1:predict", `{"instances": [[1, 2, 3]]}`)
		require.Equal(t, http.StatusOK, code, body)
	}
	code, _ := s.get(t, DefaultMetricsPath)
	require.Equal(t, http.StatusNotFound, code, "only the configured path")
	mfs := scrape(t, s, "/metrics")
	require.EqualValues(t, 2, counterValue(t, mfs, ":tensorflow:serving:batching_session:wrapped_run_count", map[string]string{}))
	require.EqualValues(t, 2, histogramCount(t, mfs, ":tensorflow:serving:batching_session:queuing_latency", map[string]string{"thread_pool_name": "batch_threads"}))
	require.EqualValues(t, 2, histogramCount(t, mfs, ":tensorflow:serving:batching_session:processed_batch_size", map[string]string{}))
	require.EqualValues(t, 2, histogramCount(t, mfs, ":tensorflow:serving:batching_session:input_batch_size", map[string]string{}))
	require.EqualValues(t, 2, histogramCount(t, mfs, ":tensorflow:serving:runtime_latency", map[string]string{"model_name": "tf1", "API": "Predict", "runtime": "TF1"}))

	off := startServer(t, Config{Models: []ModelConfig{{Name: "tf1", BasePath: base}}, Monitoring: MonitoringConfig{Disable: true}})
	code, _ = off.get(t, DefaultMetricsPath)
	require.Equal(t, http.StatusNotFound, code)
}

// TestMonitoringConfigFile reads TF Serving's monitoring config format.
func TestMonitoringConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitoring.config")
	require.NoError(t, os.WriteFile(path, []byte(`prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }`), 0o644))
	c, err := ReadMonitoringConfigFile(path)
	require.NoError(t, err)
	require.Equal(t, MonitoringConfig{Path: DefaultMetricsPath}, c)

	c, err = ParseMonitoringConfig("prometheus_config { enable: true }")
	require.NoError(t, err)
	require.Equal(t, DefaultMetricsPath, c.metricsPath())
	c, err = ParseMonitoringConfig(`prometheus_config { path: "/m" }`)
	require.NoError(t, err)
	require.True(t, c.Disable, "TF Serving serves metrics only when enable is true")
	c, err = ParseMonitoringConfig("")
	require.NoError(t, err)
	require.Equal(t, "", c.metricsPath())

	for _, c := range []struct{ text, want string }{
		{"prometheus_config { enable: true, port: 9 }", "port"},
		{"statsd_config { }", "statsd_config"},
		{`prometheus_config { enable: true, path: "metrics" }`, "must start with /"},
		{`prometheus_config { enable: true, path: "/v1/models/x" }`, "/v1/"},
		{"prometheus_config { enable: yes }", "invalid value for bool"},
	} {
		_, err := ParseMonitoringConfig(c.text)
		require.Error(t, err, c.text)
		require.Contains(t, err.Error(), c.want, c.text)
	}
	bad := filepath.Join(t.TempDir(), "bad.config")
	require.NoError(t, os.WriteFile(bad, []byte("prometheus_config { enable: true, bogus: 1 }"), 0o644))
	_, err = ReadMonitoringConfigFile(bad)
	require.ErrorContains(t, err, bad)
	require.ErrorContains(t, err, "bogus")
	_, err = ReadMonitoringConfigFile(filepath.Join(t.TempDir(), "absent"))
	require.Error(t, err)
}
