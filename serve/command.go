package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// UsageError is Main's error for a command line it cannot take (an
// unknown flag, a bad value, a missing model), as opposed to a failure
// while serving.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Main runs the model server as tensorflow_model_server does, on the
// command-line arguments args (its flags: --port, --rest_api_port,
// --model_name, --model_base_path, --model_config_file, ...), logging to
// logw, until SIGINT or SIGTERM: requests under way finish (up to 30 s),
// then every model is unloaded. cmd/gotf-serve and `gotf serve` are this.
func Main(args []string, logw io.Writer) error {
	fs := flag.NewFlagSet("gotf-serve", flag.ContinueOnError)
	// A flag error is the returned error alone; the flags are listed on
	// -h or --help only.
	fs.SetOutput(io.Discard)
	port := fs.Int("port", 8500, "port of the gRPC API (PredictionService, ModelService, health, reflection); 0 serves no gRPC")
	grpcHost := fs.String("grpc_host", "0.0.0.0", "address the gRPC API listens on (not a tensorflow_model_server flag)")
	restPort := fs.Int("rest_api_port", 8501, "port of the REST API; 0 serves no REST (tensorflow_model_server's default is 0; here REST is on unless turned off)")
	restHost := fs.String("rest_api_host", "0.0.0.0", "address the REST API listens on (not a tensorflow_model_server flag)")
	restTimeout := fs.Int64("rest_api_timeout_in_ms", 30000, "timeout of a REST predict, classify or regress call")
	modelName := fs.String("model_name", "default", "name of the model (with --model_base_path)")
	basePath := fs.String("model_base_path", "", "directory holding the model's numeric versions")
	configFile := fs.String("model_config_file", "", "model_config_list text proto naming several models (instead of --model_name/--model_base_path)")
	configPoll := fs.Int64("model_config_file_poll_wait_seconds", 0, "seconds between reads of --model_config_file; a changed file is applied (0: read once)")
	pollWait := fs.Int64("file_system_poll_wait_seconds", 1, "seconds between scans of the base paths for new versions; 0 scans once")
	retries := fs.Int("max_num_load_retries", 5, "times a version that failed to load is tried again")
	retryMicros := fs.Int64("load_retry_interval_micros", 60_000_000, "least time between two tries of loading a version, in microseconds")
	intraOp := fs.Int("tensorflow_intra_op_parallelism", 0, "threads of one op's parallel work (0: TensorFlow picks)")
	interOp := fs.Int("tensorflow_inter_op_parallelism", 0, "threads running independent ops (0: TensorFlow picks)")
	tags := fs.String("saved_model_tags", "serve", "comma-separated tags of the meta graph to load from each SavedModel")
	batching := fs.Bool("enable_batching", false, "merge concurrent predict requests into one session run")
	batchingFile := fs.String("batching_parameters_file", "", "BatchingParameters text proto (max_batch_size, batch_timeout_micros, ...); needs --enable_batching")
	monitoringFile := fs.String("monitoring_config_file", "", "MonitoringConfig text proto (prometheus_config { enable, path }); without it the metrics are at "+DefaultMetricsPath+" (TF Serving serves none)")
	warmup := fs.Bool("enable_model_warmup", true, "replay a version's assets.extra/tf_serving_warmup_requests before it is AVAILABLE")
	warmupIters := fs.Int("num_request_iterations_for_warmup", 1, "times each warm-up record is replayed")
	transition := fs.String("version_transition_policy", "availability_preserving", "availability_preserving (load the new version, then unload the old) or resource_preserving (unload first; one version's memory at a time) (not a tensorflow_model_server flag)")
	// Flags of tensorflow_model_server for what is not built yet: known, so
	// that the error says so, and refused when set, since a server that
	// silently did not batch, warm up or export metrics is not what the
	// manifest asked for. The REST thread count is only a tuning hint:
	// accepted with a warning.
	notYet := map[string]*ignoredFlag{}
	for name, isBool := range map[string]bool{
		"rest_api_num_threads": false, "grpc_channel_arguments": false, "grpc_socket_path": false, "grpc_max_threads": false,
		"rest_api_enable_cors_support": true, "num_load_threads": false, "num_unload_threads": false,
		"flush_filesystem_caches": true, "tensorflow_session_parallelism": false, "use_alts_credentials": true,
		"platform_config_file": false, "prefer_tflite_model": true, "enable_profiler": true,
		"thread_pool_factory_config_file": false, "mixed_precision": false, "skip_initialize_tpu": true,
	} {
		notYet[name] = &ignoredFlag{isBool: isBool}
		fs.Var(notYet[name], name, "not implemented yet: refused when set (rest_api_num_threads: ignored with a warning)")
	}
	maxBody := fs.Int64("rest_api_max_request_bytes", 64<<20, "bound on a REST request body (not a tensorflow_model_server flag)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(logw)
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return &UsageError{err}
	}
	log := slog.New(slog.NewTextHandler(logw, nil))
	var models []ModelConfig
	switch {
	case *configFile != "" && *basePath != "":
		return &UsageError{errors.New("--model_config_file and --model_base_path are exclusive")}
	case *configFile != "":
		mcs, err := ReadModelConfigFile(*configFile)
		if err != nil {
			return err
		}
		models = mcs
	case *basePath != "":
		models = []ModelConfig{{Name: *modelName, BasePath: *basePath}}
	default:
		return &UsageError{errors.New("give --model_base_path (and --model_name) or --model_config_file")}
	}
	if *restPort < 0 || *restPort > 65535 {
		return &UsageError{fmt.Errorf("--rest_api_port=%d: give the port the REST API listens on (0: none)", *restPort)}
	}
	if *port < 0 || *port > 65535 {
		return &UsageError{fmt.Errorf("--port=%d: give the port the gRPC API listens on (0: none)", *port)}
	}
	if *port == 0 && *restPort == 0 {
		return &UsageError{errors.New("--port=0 and --rest_api_port=0: nothing would be served")}
	}
	for name, v := range notYet {
		switch {
		case v.value == "" || v.value == "false":
		case name == "rest_api_num_threads":
			log.Warn("flag not implemented yet; ignored", "flag", name, "value", v.value)
		default:
			return &UsageError{fmt.Errorf("--%s is not implemented by gotf-serve", name)}
		}
	}
	cfg := Config{
		Models:            models,
		PollInterval:      time.Duration(*pollWait) * time.Second,
		LoadRetries:       *retries,
		RequestTimeout:    time.Duration(*restTimeout) * time.Millisecond,
		MaxRequestBytes:   *maxBody,
		LoadRetryInterval: time.Duration(*retryMicros) * time.Microsecond,
	}
	cfg.Load.Session.IntraOpThreads, cfg.Load.Session.InterOpThreads = *intraOp, *interOp
	cfg.Load.Tags = strings.Split(*tags, ",")
	if slices.Contains(cfg.Load.Tags, "") {
		return &UsageError{fmt.Errorf("--saved_model_tags=%q: a tag is empty", *tags)}
	}
	cfg.DisableModelWarmup, cfg.WarmupIterations = !*warmup, *warmupIters
	switch *transition {
	case "availability_preserving":
		cfg.VersionTransition = AvailabilityPreserving
	case "resource_preserving":
		cfg.VersionTransition = ResourcePreserving
	default:
		return &UsageError{fmt.Errorf("--version_transition_policy=%q: give availability_preserving or resource_preserving", *transition)}
	}
	var err error
	switch {
	case *batching:
		// Without a file, TF Serving batches with BatchingParameters'
		// defaults; a file read is already validated.
		cfg.Batching = &BatchingConfig{}
		if *batchingFile != "" {
			if cfg.Batching, err = ReadBatchingParametersFile(*batchingFile); err != nil {
				return err
			}
		}
	case *batchingFile != "":
		return &UsageError{errors.New("--batching_parameters_file is set without setting --enable_batching")}
	}
	if *monitoringFile != "" {
		if cfg.Monitoring, err = ReadMonitoringConfigFile(*monitoringFile); err != nil {
			return err
		}
	}
	if *warmupIters < 1 {
		return &UsageError{fmt.Errorf("--num_request_iterations_for_warmup=%d: give 1 or more", *warmupIters)}
	}
	if *pollWait <= 0 {
		cfg.PollInterval = -1
	}
	if *retries == 0 {
		cfg.LoadRetries = -1
	}
	if *restTimeout <= 0 {
		cfg.RequestTimeout = -1
	}
	// Before anything loads: TensorFlow reads it once (trim_onednn.go).
	useSystemAllocator()
	srv, err := New(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Listen first: a port in use is an error at once, not after loading.
	var gl net.Listener
	if *port != 0 {
		if gl, err = net.Listen("tcp", net.JoinHostPort(*grpcHost, strconv.Itoa(*port))); err != nil {
			return err
		}
	}
	var l net.Listener
	if *restPort != 0 {
		if l, err = net.Listen("tcp", net.JoinHostPort(*restHost, strconv.Itoa(*restPort))); err != nil {
			if gl != nil {
				gl.Close()
			}
			return err
		}
	}
	served := make(chan error, 2)
	if gl != nil {
		go func() { served <- srv.ServeGRPC(gl) }()
		log.Info("Running gRPC ModelServer", "addr", gl.Addr().String())
	}
	if l != nil {
		go func() { served <- srv.Serve(l) }()
		log.Info("Exporting HTTP/REST API", "addr", l.Addr().String())
	}
	if err := srv.Start(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	if *configFile != "" && *configPoll > 0 {
		go watchConfig(ctx, srv, log, *configFile, time.Duration(*configPoll)*time.Second)
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			srv.Close(context.Background())
			return err
		}
	}
	log.Info("stopping: draining requests, then unloading the models")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Close(shutdown)
}

// ignoredFlag takes a flag's value without using it; a bool one may be
// given bare (--enable_batching), as tensorflow_model_server's are.
type ignoredFlag struct {
	value  string
	isBool bool
}

func (f *ignoredFlag) String() string     { return f.value }
func (f *ignoredFlag) Set(v string) error { f.value = v; return nil }
func (f *ignoredFlag) IsBoolFlag() bool   { return f.isBool }

// watchConfig rereads the model config file every interval and applies it
// when its text changed; a file that does not parse is logged and the
// models stay as they are, as TF Serving keeps its last good config.
func watchConfig(ctx context.Context, srv *Server, log *slog.Logger, path string, interval time.Duration) {
	last, _ := os.ReadFile(path)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		text, err := os.ReadFile(path)
		if err != nil {
			log.Warn("reading the model config file", "path", path, "err", err)
			continue
		}
		if string(text) == string(last) {
			continue
		}
		last = text
		models, err := ParseModelConfigList(string(text))
		if err == nil {
			err = srv.Reload(models)
		}
		if err != nil {
			log.Error("model config not applied; the models stay as they were", "path", path, "err", err)
			continue
		}
		log.Info("model config reloaded", "path", path, "models", len(models))
	}
}
