package serve

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/gotf/gotf/serve/tfserving"
	"google.golang.org/protobuf/encoding/prototext"
)

// BatchingConfig is TF Serving's BatchingParameters
// (session_bundle_config.proto), the content of its
// --batching_parameters_file: how predict runs are queued and merged into
// one session run. A zero field takes TF Serving's default.
type BatchingConfig struct {
	// MaxBatchSize is the most rows (the sum of the requests' dimension 0)
	// one merged run takes; a request with more is refused. 0 means 1000.
	MaxBatchSize int
	// BatchTimeout is how long the first request of a batch waits for
	// others before the batch runs below MaxBatchSize. 0 (TF Serving's
	// default) runs a batch as soon as a batch thread is free, so requests
	// merge only while every thread is busy.
	BatchTimeout time.Duration
	// MaxEnqueuedBatches bounds the batches waiting in one queue (one
	// model version, signature and set of tensors); a request that would
	// need one more is refused with ResourceExhausted. 0 means 10.
	MaxEnqueuedBatches int
	// NumBatchThreads is how many merged runs go at once, over every
	// queue of the server. 0 means the number of CPUs.
	NumBatchThreads int
	// ThreadPoolName labels the queuing latency metric; "" means
	// "batch_threads".
	ThreadPoolName string
	// AllowedBatchSizes, when not empty, are the sizes a merged run may
	// have, increasing, the last equal to MaxBatchSize: a batch is padded
	// up to the next one with copies of its last request's first row, and
	// the padding dropped from the outputs.
	AllowedBatchSizes []int
	// PadVariableLengthInputs pads every dimension but the first of each
	// request's inputs to the largest in the batch (with the tensor's
	// first element), so that requests of different lengths merge.
	PadVariableLengthInputs bool
}

// Defaults of TF Serving's SharedBatchScheduler (its QueueOptions and
// Options).
const (
	defaultMaxBatchSize       = 1000
	defaultMaxEnqueuedBatches = 10
	defaultThreadPoolName     = "batch_threads"
)

// maxBatchingFileBytes bounds a batching or monitoring parameters file.
const maxBatchingFileBytes = 1 << 20

// withDefaults is c with TF Serving's defaults for its zero fields.
func (c BatchingConfig) withDefaults() BatchingConfig {
	if c.MaxBatchSize == 0 {
		c.MaxBatchSize = defaultMaxBatchSize
	}
	if c.MaxEnqueuedBatches == 0 {
		c.MaxEnqueuedBatches = defaultMaxEnqueuedBatches
	}
	if c.NumBatchThreads == 0 {
		c.NumBatchThreads = runtime.NumCPU()
	}
	if c.ThreadPoolName == "" {
		c.ThreadPoolName = defaultThreadPoolName
	}
	return c
}

// Validate checks a batching configuration as TF Serving does when it
// wraps a session for batching (bundle_factory_util.cc, batching_session.cc
// and the batch scheduler's queue checks).
func (c *BatchingConfig) Validate() error {
	d := c.withDefaults()
	switch {
	case d.MaxBatchSize < 0:
		return fmt.Errorf("serve: batching: max_batch_size must be positive; was %d", c.MaxBatchSize)
	case d.BatchTimeout < 0:
		return fmt.Errorf("serve: batching: batch_timeout_micros must be non-negative; was %d", c.BatchTimeout.Microseconds())
	case d.MaxEnqueuedBatches < 0:
		return fmt.Errorf("serve: batching: max_enqueued_batches must be positive; was %d", c.MaxEnqueuedBatches)
	case d.NumBatchThreads < 0:
		return fmt.Errorf("serve: batching: num_batch_threads must be positive; was %d", c.NumBatchThreads)
	}
	for i, n := range d.AllowedBatchSizes {
		if n <= 0 {
			return fmt.Errorf("serve: batching: allowed_batch_sizes entries must be positive; entry %d was %d", i, n)
		}
		if i > 0 && n <= d.AllowedBatchSizes[i-1] {
			return fmt.Errorf("serve: batching: allowed_batch_sizes entries must be monotonically increasing")
		}
	}
	if n := len(d.AllowedBatchSizes); n > 0 && d.AllowedBatchSizes[n-1] != d.MaxBatchSize {
		return fmt.Errorf("serve: batching: Last entry in allowed_batch_sizes must match max_batch_size; last entry was %d; expected %d", d.AllowedBatchSizes[n-1], d.MaxBatchSize)
	}
	return nil
}

// ReadBatchingParametersFile reads TF Serving's --batching_parameters_file:
// a BatchingParameters message in protobuf text format, bounded to 1 MiB.
// Errors name the file and the field.
func ReadBatchingParametersFile(path string) (*BatchingConfig, error) {
	text, err := readBoundedFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseBatchingParameters(text)
	if err != nil {
		return nil, fmt.Errorf("serve: batching parameters file %s: %w", path, err)
	}
	return c, nil
}

// readBoundedFile reads a small configuration file whole, refusing one of
// more than maxBatchingFileBytes.
func readBoundedFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("serve: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBatchingFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("serve: reading %s: %w", path, err)
	}
	if len(b) > maxBatchingFileBytes {
		return "", fmt.Errorf("serve: %s is larger than %d bytes", path, maxBatchingFileBytes)
	}
	return string(b), nil
}

// ParseBatchingParameters reads a BatchingParameters message in protobuf
// text format (max_batch_size { value: 32 } ...). Fields of TF Serving that
// this server does not implement (enable_large_batch_splitting,
// max_execution_batch_size, and any field this version of the message
// does not know, such as batch_padding_policy or mixed_priority_batching)
// are refused with their name rather than ignored.
func ParseBatchingParameters(text string) (*BatchingConfig, error) {
	if len(text) > maxBatchingFileBytes {
		return nil, fmt.Errorf("batching parameters of more than %d bytes", maxBatchingFileBytes)
	}
	var p tfserving.BatchingParameters
	if err := prototext.Unmarshal([]byte(text), &p); err != nil {
		return nil, fmt.Errorf("parsing BatchingParameters: %w", err)
	}
	if p.EnableLargeBatchSplitting != nil && p.EnableLargeBatchSplitting.GetValue() {
		return nil, fmt.Errorf("enable_large_batch_splitting is not implemented (a request larger than max_batch_size is refused instead of split)")
	}
	if p.MaxExecutionBatchSize != nil {
		return nil, fmt.Errorf("max_execution_batch_size is not implemented (it goes with enable_large_batch_splitting)")
	}
	// Every int64 field must fit an int and be positive where TF Serving
	// requires it; explicit zeros are refused rather than read as defaults.
	c := &BatchingConfig{PadVariableLengthInputs: p.PadVariableLengthInputs}
	pos := func(name string, v interface{ GetValue() int64 }, dst *int, allowZero bool) error {
		if v == nil {
			return nil
		}
		n := v.GetValue()
		if n < 0 || (!allowZero && n == 0) || n > 1<<31-1 {
			return fmt.Errorf("%s must be positive (and below 2^31); was %d", name, n)
		}
		*dst = int(n)
		return nil
	}
	if p.MaxBatchSize != nil {
		if err := pos("max_batch_size", p.MaxBatchSize, &c.MaxBatchSize, false); err != nil {
			return nil, err
		}
	}
	if p.MaxEnqueuedBatches != nil {
		if err := pos("max_enqueued_batches", p.MaxEnqueuedBatches, &c.MaxEnqueuedBatches, false); err != nil {
			return nil, err
		}
	}
	if p.NumBatchThreads != nil {
		if err := pos("num_batch_threads", p.NumBatchThreads, &c.NumBatchThreads, false); err != nil {
			return nil, err
		}
	}
	if p.BatchTimeoutMicros != nil {
		us := p.BatchTimeoutMicros.GetValue()
		if us < 0 || us > int64(time.Hour/time.Microsecond) {
			return nil, fmt.Errorf("batch_timeout_micros must be non-negative (and at most an hour); was %d", us)
		}
		c.BatchTimeout = time.Duration(us) * time.Microsecond
	}
	if p.ThreadPoolName != nil {
		c.ThreadPoolName = p.ThreadPoolName.GetValue()
	}
	for i, n := range p.AllowedBatchSizes {
		if n <= 0 || n > 1<<31-1 {
			return nil, fmt.Errorf("allowed_batch_sizes entry %d must be positive; was %d", i, n)
		}
		c.AllowedBatchSizes = append(c.AllowedBatchSizes, int(n))
	}
	if p.MaxBatchSize == nil && len(c.AllowedBatchSizes) > 0 {
		// TF Serving compares the last allowed size with the default
		// limit, 1000, when max_batch_size is not given.
		c.MaxBatchSize = defaultMaxBatchSize
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
