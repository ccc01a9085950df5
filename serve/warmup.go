package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/serve/tfserving"
	"google.golang.org/protobuf/proto"
)

// warmupFile is where a version directory keeps its warm-up requests, as
// TF Serving names it (kSavedModelAssetsExtraDirectory and
// WarmupConsts::kRequestsFileName): TFRecords, each a serialized
// tensorflow.serving.PredictionLog.
const warmupFile = "assets.extra/tf_serving_warmup_requests"

// maxWarmupRecords bounds the records of a warm-up file, as TF Serving's
// WarmupConsts::kMaxNumRecords: a file with more fails the load.
const maxWarmupRecords = 1000

// warmup replays the warm-up requests of a version that has loaded but is
// not AVAILABLE yet, each Config.WarmupIterations times, through the gRPC
// API's own handlers (the signature checks and runs of real requests),
// as TF Serving's RunSavedModelWarmup does before it marks a version ready.
// A version without a warm-up file needs none. A record that cannot be
// read or parsed, a record whose request fails, and more than
// maxWarmupRecords records fail the load, with the file and the record's
// index in the error.
func (s *Server) warmup(ctx context.Context, model string, v *version, m *runner.Model) error {
	path := filepath.Join(v.dir, filepath.FromSlash(warmupFile))
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening the warm-up file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("warm-up file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return statusf(InvalidArgument, "warm-up file %s is not a regular file", path)
	}
	// No record is longer than its file, so a corrupt length cannot make
	// the reader allocate more than the file's size.
	limit := max(min(fi.Size(), savedmodel.DefaultMaxRecordBytes), 1)
	rr := savedmodel.NewRecordReader(bufio.NewReader(f), savedmodel.RecordReaderOptions{Name: path, MaxRecordBytes: limit})
	iterations := max(s.cfg.WarmupIterations, 1)
	api := &grpcAPI{s: s, warming: &handle{name: model, version: v.num, model: m, v: v}}
	start := time.Now()
	n := 0
	for ; ; n++ {
		rec, err := rr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return statusf(DataLoss, "warm-up record %d of %v. Please verify your warmup data is in TFRecord format.", n, err)
		}
		if n == maxWarmupRecords {
			return statusf(InvalidArgument, "Number of warmup records exceeds the maximum (%d) at %s", maxWarmupRecords, path)
		}
		var pl tfserving.PredictionLog
		if err := proto.Unmarshal(rec, &pl); err != nil {
			return statusf(InvalidArgument, "Failed to parse warmup record %d from %s: %v", n, path, err)
		}
		for range iterations {
			if err := api.replay(ctx, &pl); err != nil {
				st := statusOf(err)
				return &Status{Code: st.Code, Message: fmt.Sprintf("warm-up record %d of %s: %s", n, path, st.Message)}
			}
		}
	}
	s.log.Info("model version warmed up", "model", model, "version", v.num, "records", n, "iterations", iterations, "warmup_time", time.Since(start).Round(time.Millisecond))
	return nil
}

// replay runs one warm-up record's request, as TF Serving's
// RunWarmupRequest: predict, classify, regress and multi_inference logs
// run; session_run and predict_streamed logs are Unimplemented (failing
// the load); a record without a log does nothing. The answers are
// dropped.
func (g *grpcAPI) replay(ctx context.Context, pl *tfserving.PredictionLog) error {
	var err error
	switch l := pl.GetLogType().(type) {
	case nil:
	case *tfserving.PredictionLog_PredictLog:
		_, err = g.predict(ctx, l.PredictLog.GetRequest())
	case *tfserving.PredictionLog_ClassifyLog:
		req := l.ClassifyLog.GetRequest()
		_, err = g.classifyOrRegress(ctx, req.GetModelSpec(), req.GetInput(), true)
	case *tfserving.PredictionLog_RegressLog:
		req := l.RegressLog.GetRequest()
		_, err = g.classifyOrRegress(ctx, req.GetModelSpec(), req.GetInput(), false)
	case *tfserving.PredictionLog_MultiInferenceLog:
		_, err = g.multiInference(ctx, l.MultiInferenceLog.GetRequest())
	case *tfserving.PredictionLog_SessionRunLog:
		err = statusf(Unimplemented, "Unsupported log_type for warmup: session_run_log")
	case *tfserving.PredictionLog_PredictStreamedLog:
		err = statusf(Unimplemented, "Unsupported log_type for warmup: predict_streamed_log")
	default:
		err = statusf(Unimplemented, "Unsupported log_type for warmup: %T", l)
	}
	return err
}
