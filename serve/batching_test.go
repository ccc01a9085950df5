package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/serve/tfserving"
	"github.com/gotf/gotf/tfgo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// exportBatching is Python code that writes a TF1 SavedModel to
// inputs["dir"] whose signatures work row by row: serving_default
// (x [?, 3] float -> y, an affine map), and lengths (ids [?, ?] int64 ->
// the max and min of each row). TF Serving pads a request's tensor with
// its first element (not each row's): the test's rows hold that value, so
// that padding leaves max and min alone.
const exportBatching = `
d = inputs["dir"].item().decode()
g = tf.Graph()
with g.as_default():
    rs = np.random.RandomState(7)
    w = tf.compat.v1.get_variable("w", initializer=rs.randn(3, 2).astype("float32"))
    b = tf.compat.v1.get_variable("b", initializer=rs.randn(2).astype("float32"))
    x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
    y = tf.identity(tf.matmul(x, w) + b, name="y")
    ids = tf.compat.v1.placeholder(tf.int64, [None, None], name="ids")
    hi = tf.reduce_max(ids, axis=1)
    lo = tf.reduce_min(ids, axis=1)
    n = tf.compat.v1.placeholder(tf.float32, [None], name="n")
    k = tf.compat.v1.placeholder(tf.float32, [], name="k")
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        sd = tf.compat.v1.saved_model.signature_def_utils
        builder = tf.compat.v1.saved_model.Builder(d)
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": sd.predict_signature_def({"x": x}, {"y": y}),
            "lengths": sd.predict_signature_def({"ids": ids}, {"hi": hi, "lo": lo}),
            "pair": sd.predict_signature_def({"x": x, "n": n}, {"p": tf.reduce_sum(x, axis=1) * n}),
            "scale": sd.predict_signature_def({"x": x, "k": k}, {"s": x * k}),
        })
        builder.save()
`

// pySignature is Python code that runs signature inputs["sig"] of the
// SavedModel in inputs["dir"] on inputs["x"] (as input inputs["name"])
// with tf.saved_model.load and returns its outputs.
const pySignature = pyLoad + `
fn = _m.signatures[inputs["sig"].item().decode()]
res = fn(**{inputs["name"].item().decode(): tf.constant(inputs["x"])})
for k, v in res.items():
    outputs[k] = v.numpy()
`

func exportBatchingModel(t *testing.T) string {
	t.Helper()
	base := filepath.Join(t.TempDir(), "batching")
	interop.Python(t, exportBatching, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(base, "1"))})
	return base
}

// holdThreads takes every batch thread of s's batcher, so that requests
// queue; the returned function gives them back.
func holdThreads(s *Server) func() {
	b := s.ext().batcher
	for range cap(b.threads) {
		b.threads <- struct{}{}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for range cap(b.threads) {
				<-b.threads
			}
		})
	}
}

// queued is the number of requests waiting in s's batching queues.
func queued(s *Server) int {
	b := s.ext().batcher
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, q := range b.queues {
		for _, ob := range q.batches {
			n += len(ob.tasks)
		}
	}
	return n
}

// histogram is the sample count and sum of a histogram of reg whose
// labels include labels.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var n uint64
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			n += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return n, sum
}

type predictAnswer struct {
	Predictions [][]float64 `json:"predictions"`
}

// TestBatchingMergesConcurrentPredicts sends single-row predicts from 16
// goroutines over REST and gRPC to a server with batching on: far fewer
// session runs than requests are made, and every answer equals the row of
// Python's signature output for all the rows at once.
func TestBatchingMergesConcurrentPredicts(t *testing.T) {
	base := exportBatchingModel(t)
	s, addr := startGRPCServer(t, Config{
		Models:   []ModelConfig{{Name: "m", BasePath: base}},
		Batching: &BatchingConfig{MaxBatchSize: 32, BatchTimeout: 5 * time.Millisecond, NumBatchThreads: 2, MaxEnqueuedBatches: 100},
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := tfserving.NewPredictionServiceClient(conn)

	const workers, perWorker = 16, 12
	r := rand.New(rand.NewPCG(3, 4))
	rows := make([][]float32, workers*perWorker)
	for i := range rows {
		rows[i] = []float32{float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())}
	}
	got := make([][]float32, len(rows))
	var wg sync.WaitGroup
	errs := make(chan error, len(rows))
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perWorker {
				i := w*perWorker + j
				if w%2 == 0 {
					body := fmt.Sprintf(`{"instances": [[%g, %g, %g]]}`, rows[i][0], rows[i][1], rows[i][2])
					resp, err := http.Post(s.url+"/v1/models/m:predict", "application/json", strings.NewReader(body))
					if err != nil {
						errs <- err
						return
					}
					var a predictAnswer
					err = json.NewDecoder(resp.Body).Decode(&a)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK || len(a.Predictions) != 1 {
						errs <- fmt.Errorf("request %d: %d %v %v", i, resp.StatusCode, a, err)
						return
					}
					got[i] = []float32{float32(a.Predictions[0][0]), float32(a.Predictions[0][1])}
					continue
				}
				x, err := tfgo.NewTensor([][]float32{rows[i]})
				if err != nil {
					errs <- err
					return
				}
				tp, err := tensorProto(x)
				x.Close()
				if err != nil {
					errs <- err
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				res, err := client.Predict(ctx, &tfserving.PredictRequest{ModelSpec: &tfserving.ModelSpec{Name: "m"}, Inputs: map[string]*tpb.TensorProto{"x": tp}})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("request %d: %v", i, err)
					return
				}
				y := res.GetOutputs()["y"]
				if len(y.GetFloatVal()) != 2 {
					errs <- fmt.Errorf("request %d: y %v", i, y)
					return
				}
				got[i] = y.GetFloatVal()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	b := s.ext().batcher
	runs, tasks := b.runs.Load(), b.tasks.Load()
	t.Logf("%d requests in %s: %d session runs, %.1f requests per run", len(rows), time.Since(start).Round(time.Millisecond), runs, float64(tasks)/float64(runs))
	require.EqualValues(t, len(rows), tasks)
	require.Less(t, runs, int64(len(rows)/3), "requests were not merged")
	n, sum := histogram(t, s.ext().metrics.reg, ":tensorflow:serving:batching_session:processed_batch_size", nil)
	require.EqualValues(t, runs, n)
	require.EqualValues(t, len(rows), sum)

	// Python runs the signature on every row at once; each answer is its
	// row of that.
	all, err := tfgo.NewTensor(rows)
	require.NoError(t, err)
	py := interop.Python(t, pySignature, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(base, "1")), "sig": str(t, "serving_default"), "name": str(t, "x"), "x": all})
	want, err := tfgo.Float32s(py["y"])
	require.NoError(t, err)
	for i, g := range got {
		for j := range 2 {
			require.InDelta(t, want[2*i+j], g[j], 1e-6*max(1, abs32(want[2*i+j])), "request %d output %d", i, j)
		}
	}
}

func abs32(v float32) float64 {
	if v < 0 {
		return float64(-v)
	}
	return float64(v)
}

// postAsync sends a predict in the background; the channel gets its code
// and body.
func postAsync(t *testing.T, s *testServer, path, body string) chan [2]string {
	ch := make(chan [2]string, 1)
	go func() {
		resp, err := s.client.Post(s.url+path, "application/json", strings.NewReader(body))
		if err != nil {
			ch <- [2]string{"error", err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- [2]string{fmt.Sprint(resp.StatusCode), string(b)}
	}()
	return ch
}

// TestBatchingPadding checks allowed_batch_sizes (three rows run as a
// batch of 4, the padding dropped) and pad_variable_length_inputs
// (requests of different lengths merged into one run, padded with their
// first element), against Python's outputs for each request alone.
func TestBatchingPadding(t *testing.T) {
	base := exportBatchingModel(t)
	dir := filepath.Join(base, "1")
	s := startServer(t, Config{
		Models: []ModelConfig{{Name: "m", BasePath: base}},
		Batching: &BatchingConfig{MaxBatchSize: 8, AllowedBatchSizes: []int{2, 4, 8}, NumBatchThreads: 1,
			BatchTimeout: time.Millisecond, PadVariableLengthInputs: true},
	})
	b := s.ext().batcher
	reg := s.ext().metrics.reg

	// Three single rows, queued while the thread is held: one run of 4.
	release := holdThreads(s.Server)
	xs := [][]float32{{1, 2, 3}, {-0.5, 0.25, 8}, {1e-3, -7, 2}}
	var chans []chan [2]string
	for _, x := range xs {
		chans = append(chans, postAsync(t, s, "/v1/models/m:predict", fmt.Sprintf(`{"instances": [[%g, %g, %g]]}`, x[0], x[1], x[2])))
	}
	waitUntil(t, 10*time.Second, "three requests queued", func() bool { return queued(s.Server) == 3 })
	runs := b.runs.Load()
	release()
	for i, ch := range chans {
		r := <-ch
		require.Equal(t, "200", r[0], r[1])
		py := interop.Python(t, pySignature, map[string]*tfgo.Tensor{"dir": str(t, dir), "sig": str(t, "serving_default"), "name": str(t, "x"), "x": tensorOf(t, [][]float32{xs[i]})})
		want, err := tfgo.Float32s(py["y"])
		require.NoError(t, err)
		var a predictAnswer
		require.NoError(t, json.Unmarshal([]byte(r[1]), &a))
		require.Len(t, a.Predictions, 1)
		for j := range 2 {
			require.InDelta(t, want[j], a.Predictions[0][j], 1e-6*max(1, abs32(want[j])))
		}
	}
	require.EqualValues(t, runs+1, b.runs.Load(), "one merged run")
	n, sum := histogram(t, reg, ":tensorflow:serving:batching_session:padding_size", map[string]string{"execution_batch_size": "4"})
	require.EqualValues(t, 1, n)
	require.EqualValues(t, 1, sum)

	// Rows of ids of lengths 2, 5 and 3 (two rows in two of the requests):
	// merged into one run of [8, 5] (5 rows padded to the allowed 8).
	release = holdThreads(s.Server)
	reqs := [][][]int64{{{4, -2}}, {{9, 1, 1, 30, 2}, {-5, -6, -7, -8, -9}}, {{0, 100, -100}, {3, 0, 3}}}
	chans = chans[:0]
	for _, ids := range reqs {
		js, err := json.Marshal(ids)
		require.NoError(t, err)
		chans = append(chans, postAsync(t, s, "/v1/models/m:predict", `{"signature_name": "lengths", "inputs": {"ids": `+string(js)+`}}`))
	}
	waitUntil(t, 10*time.Second, "three requests queued", func() bool { return queued(s.Server) == 3 })
	runs = b.runs.Load()
	release()
	for i, ch := range chans {
		r := <-ch
		require.Equal(t, "200", r[0], r[1])
		py := interop.Python(t, pySignature, map[string]*tfgo.Tensor{"dir": str(t, dir), "sig": str(t, "lengths"), "name": str(t, "ids"), "x": tensorOf(t, reqs[i])})
		var a struct {
			Outputs map[string][]int64 `json:"outputs"`
		}
		require.NoError(t, json.Unmarshal([]byte(r[1]), &a), r[1])
		for _, k := range []string{"hi", "lo"} {
			want, err := tfgo.Int64s(py[k])
			require.NoError(t, err)
			require.Equal(t, want, a.Outputs[k], "request %d output %s", i, k)
		}
	}
	require.EqualValues(t, runs+1, b.runs.Load(), "one merged run of padded inputs")
	n, sum = histogram(t, reg, ":tensorflow:serving:batching_session:padding_size", map[string]string{"execution_batch_size": "8"})
	require.EqualValues(t, 1, n)
	require.EqualValues(t, 3, sum)

	// TF Serving's errors for what is no batch: more rows than
	// max_batch_size, and a request whose inputs have no dimension 0.
	code, body := s.post(t, "/v1/models/m:predict", `{"inputs": `+floats(rand.New(rand.NewPCG(1, 1)), 9, 3)+`}`)
	errorBody(t, "9 rows", http.StatusBadRequest, code, body, "Task size 9 is larger than maximum input batch size 8")
	code, body = s.post(t, "/v1/models/m:predict", `{"signature_name": "pair", "inputs": {"x": [[1, 2, 3], [4, 5, 6]], "n": [1, 2, 3]}}`)
	errorBody(t, "dimension 0 differs", http.StatusBadRequest, code, body, "Batching Run() input tensors must have equal 0th-dimension size")
	code, body = s.post(t, "/v1/models/m:predict", `{"signature_name": "scale", "inputs": {"x": [[1, 2, 3]], "k": 2}}`)
	errorBody(t, "scalar input", http.StatusBadRequest, code, body, "Batching Run() input tensors must have at least one dimension")
	code, body = s.post(t, "/v1/models/m:predict", `{"signature_name": "pair", "inputs": {"x": [[1, 2, 3], [4, 5, 6]], "n": [2, 3]}}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, `{"outputs": [12.0, 45.0]}`, strings.Join(strings.Fields(body), " "))
}

// TestBatchingWithoutPaddingKeepsShapesApart checks that without
// pad_variable_length_inputs, requests of different lengths still get
// their answers: they go to different queues (TF Serving would fail the
// merged batch).
func TestBatchingWithoutPaddingKeepsShapesApart(t *testing.T) {
	base := exportBatchingModel(t)
	s := startServer(t, Config{
		Models:   []ModelConfig{{Name: "m", BasePath: base}},
		Batching: &BatchingConfig{MaxBatchSize: 8, NumBatchThreads: 1, BatchTimeout: time.Millisecond},
	})
	release := holdThreads(s.Server)
	bodies := []string{`[[1, 5]]`, `[[7, 2, 3]]`, `[[3, 9]]`}
	var chans []chan [2]string
	for _, ids := range bodies {
		chans = append(chans, postAsync(t, s, "/v1/models/m:predict", `{"signature_name": "lengths", "inputs": {"ids": `+ids+`}}`))
	}
	waitUntil(t, 10*time.Second, "three requests queued", func() bool { return queued(s.Server) == 3 })
	s.ext().batcher.mu.Lock()
	nq := len(s.ext().batcher.queues)
	s.ext().batcher.mu.Unlock()
	require.Equal(t, 2, nq, "one queue per shape")
	release()
	want := []string{`"hi": [5]`, `"hi": [7]`, `"hi": [9]`}
	for i, ch := range chans {
		r := <-ch
		require.Equal(t, "200", r[0], r[1])
		require.Contains(t, strings.Join(strings.Fields(r[1]), " "), strings.Join(strings.Fields(want[i]), " "))
	}
}

// TestBatchingQueueFullAndDeadline fills a queue (ResourceExhausted, 429,
// with TF Serving's message) and lets a queued request's deadline pass
// (DeadlineExceeded, 504; it leaves the queue), with the batch thread
// held.
func TestBatchingQueueFullAndDeadline(t *testing.T) {
	base := exportBatchingModel(t)
	s := startServer(t, Config{
		Models:         []ModelConfig{{Name: "m", BasePath: base}},
		RequestTimeout: 2 * time.Second,
		Batching:       &BatchingConfig{MaxBatchSize: 1, MaxEnqueuedBatches: 1, NumBatchThreads: 1},
	})
	row := `{"instances": [[1, 2, 3]]}`
	release := holdThreads(s.Server)
	defer release()
	first := postAsync(t, s, "/v1/models/m:predict", row)
	waitUntil(t, 10*time.Second, "one request queued", func() bool { return queued(s.Server) == 1 })
	code, body := s.post(t, "/v1/models/m:predict", row)
	errorBody(t, "queue full", http.StatusTooManyRequests, code, body, "The batch scheduling queue to which this task was submitted is full")
	// The first one waits for a thread until its deadline.
	start := time.Now()
	r := <-first
	require.Equal(t, "504", r[0], r[1])
	require.Contains(t, r[1], "waiting in batching queue")
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, 0, queued(s.Server), "the expired request left the queue")
	release()
	code, body = s.post(t, "/v1/models/m:predict", row)
	require.Equal(t, http.StatusOK, code, body)
}

// TestBatchingParametersFile reads TF Serving's batching parameters format
// and refuses what it does not implement or TF Serving refuses, naming the
// field (and the file).
func TestBatchingParametersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "batching.config")
	require.NoError(t, os.WriteFile(path, []byte("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 5000 }\nnum_batch_threads { value: 2 }\nmax_enqueued_batches { value: 7 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 32\npad_variable_length_inputs: true\n"), 0o644))
	c, err := ReadBatchingParametersFile(path)
	require.NoError(t, err)
	require.Equal(t, &BatchingConfig{MaxBatchSize: 32, BatchTimeout: 5 * time.Millisecond, NumBatchThreads: 2, MaxEnqueuedBatches: 7, AllowedBatchSizes: []int{8, 32}, PadVariableLengthInputs: true}, c)

	c, err = ParseBatchingParameters("")
	require.NoError(t, err)
	d := c.withDefaults()
	require.Equal(t, 1000, d.MaxBatchSize)
	require.Equal(t, 10, d.MaxEnqueuedBatches)
	require.Positive(t, d.NumBatchThreads)
	require.Zero(t, d.BatchTimeout)

	for _, c := range []struct{ text, want string }{
		{"enable_large_batch_splitting { value: true }", "enable_large_batch_splitting"},
		{"max_execution_batch_size { value: 8 }", "max_execution_batch_size"},
		{`batch_padding_policy: "PAD_UP"`, "batch_padding_policy"},
		{"mixed_priority_batching_policy: 1", "mixed_priority_batching_policy"},
		{"max_batch_size { value: 0 }", "max_batch_size"},
		{"num_batch_threads { value: -2 }", "num_batch_threads"},
		{"max_enqueued_batches { value: 0 }", "max_enqueued_batches"},
		{"batch_timeout_micros { value: -1 }", "batch_timeout_micros"},
		{"max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2 allowed_batch_sizes: 8", "allowed_batch_sizes entries must be monotonically increasing"},
		{"max_batch_size { value: 8 } allowed_batch_sizes: 4", "Last entry in allowed_batch_sizes must match max_batch_size"},
		{"allowed_batch_sizes: 4", "expected 1000"},
		{"max_batch_size: 8", "line 1:17"},
	} {
		_, err := ParseBatchingParameters(c.text)
		require.Error(t, err, c.text)
		require.Contains(t, err.Error(), c.want, c.text)
	}
	bad := filepath.Join(t.TempDir(), "bad.config")
	require.NoError(t, os.WriteFile(bad, []byte("max_execution_batch_size { value: 8 }"), 0o644))
	_, err = ReadBatchingParametersFile(bad)
	require.ErrorContains(t, err, bad)
	require.ErrorContains(t, err, "max_execution_batch_size")
	big := filepath.Join(t.TempDir(), "big.config")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat(" ", maxBatchingFileBytes+1)), 0o644))
	_, err = ReadBatchingParametersFile(big)
	require.ErrorContains(t, err, "larger than")
}

// TestBatchingHoldsVersionsAndDrainsOnClose queues a request, removes its
// model (the version is unloaded only after the batch has run, so the
// batch never runs a closed session), then queues another and closes the
// server: Close waits for the queued request, which gets its answer.
func TestBatchingHoldsVersionsAndDrainsOnClose(t *testing.T) {
	base := exportBatchingModel(t)
	s := startServer(t, Config{
		Models:   []ModelConfig{{Name: "m", BasePath: base}},
		Batching: &BatchingConfig{MaxBatchSize: 4, NumBatchThreads: 1},
	})
	row := `{"instances": [[1, 2, 3]]}`

	release := holdThreads(s.Server)
	defer release()
	queuedReq := postAsync(t, s, "/v1/models/m:predict", row)
	waitUntil(t, 10*time.Second, "one request queued", func() bool { return queued(s.Server) == 1 })
	reloaded := make(chan error, 1)
	go func() { reloaded <- s.Reload([]ModelConfig{{Name: "m2", BasePath: base}}) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case <-reloaded:
		t.Fatal("the version was unloaded while a request for it was queued")
	default:
	}
	release()
	r := <-queuedReq
	require.Equal(t, "200", r[0], r[1])
	require.NoError(t, <-reloaded)
	waitUntil(t, 30*time.Second, "m2 available", func() bool {
		vs, err := s.ModelStatus("m2", nil)
		return err == nil && vs[0].State == StateAvailable
	})

	release = holdThreads(s.Server)
	defer release()
	queuedReq = postAsync(t, s, "/v1/models/m2:predict", row)
	waitUntil(t, 10*time.Second, "one request queued", func() bool { return queued(s.Server) == 1 })
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		closed <- s.Close(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case <-closed:
		t.Fatal("Close returned with a request queued")
	default:
	}
	release()
	r = <-queuedReq
	require.Equal(t, "200", r[0], r[1])
	require.NoError(t, <-closed)
}

// TestBatchingBoundsPaddedBatch: two requests each under the server's input
// bound whose padded batch is over it are refused (429) before the batch
// is allocated, and the server keeps batching.
func TestBatchingBoundsPaddedBatch(t *testing.T) {
	base := exportBatchingModel(t)
	s := startServer(t, Config{
		Models: []ModelConfig{{Name: "m", BasePath: base}},
		Batching: &BatchingConfig{MaxBatchSize: 64, NumBatchThreads: 1,
			BatchTimeout: time.Millisecond, PadVariableLengthInputs: true},
		Load: runner.LoadOptions{MaxInputBytes: 16 << 10},
	})
	// 1 row of 1000 ids (8 KB) and 50 rows of 1 id (400 B): padded, a
	// [51, 1000] int64 batch of 408 KB.
	long, err := json.Marshal([][]int64{make([]int64, 1000)})
	require.NoError(t, err)
	short, err := json.Marshal(make([][]int64, 50))
	require.NoError(t, err)
	short = []byte(strings.ReplaceAll(string(short), "null", "[1]"))
	release := holdThreads(s.Server)
	chans := []chan [2]string{
		postAsync(t, s, "/v1/models/m:predict", `{"signature_name": "lengths", "inputs": {"ids": `+string(long)+`}}`),
		postAsync(t, s, "/v1/models/m:predict", `{"signature_name": "lengths", "inputs": {"ids": `+string(short)+`}}`),
	}
	waitUntil(t, 10*time.Second, "two requests queued", func() bool { return queued(s.Server) == 2 })
	release()
	for _, ch := range chans {
		r := <-ch
		require.Equal(t, "429", r[0], r[1])
		require.Contains(t, r[1], "more than 16384 bytes (the server's bound) once padded")
	}
	code, resp := s.post(t, "/v1/models/m:predict", `{"signature_name": "lengths", "inputs": {"ids": `+string(long)+`}}`)
	require.Equal(t, http.StatusOK, code, resp)
}
