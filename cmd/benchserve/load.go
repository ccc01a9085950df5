package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gotf/gotf/serve/tfserving"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	tfpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// loadRun is what one API's run measured.
type loadRun struct {
	api              string
	sent, errors     int
	firstError       string
	latencies        []time.Duration // of the answered requests, sorted
	elapsed          time.Duration   // first request due to last answer
	rssStart, rssEnd int64
	rate             float64
	respBytes        int
}

// sender sends one predict request of batch 1 and checks its answer.
type sender func(ctx context.Context) error

// newSender makes the request for api once; the sender only sends it.
func newSender(api string, s *server, m *served, ids []int32) (sender, func(), error) {
	switch api {
	case "rest":
		body, err := json.Marshal(map[string]any{"instances": [][]int32{ids}})
		if err != nil {
			return nil, nil, err
		}
		url := s.restURL + s.modelsPath + ":predict"
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%d %.200s", resp.StatusCode, b)
			}
			// A full decode of the 128x256 logits would load the 2 cores
			// the server runs on; restLogits checks one answer's values.
			if !bytes.HasPrefix(bytes.TrimSpace(b), []byte(`{`)) || !bytes.Contains(b, []byte(`"predictions"`)) {
				return fmt.Errorf("not a predictions answer: %.200s", b)
			}
			return nil
		}, client.CloseIdleConnections, nil
	case "grpc":
		conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, err
		}
		req := &tfserving.PredictRequest{
			ModelSpec: &tfserving.ModelSpec{Name: s.modelName, SignatureName: m.sig},
			Inputs: map[string]*tpb.TensorProto{m.input: {
				Dtype:       tfpb.DataType_DT_INT32,
				TensorShape: &tspb.TensorShapeProto{Dim: []*tspb.TensorShapeProto_Dim{{Size: 1}, {Size: int64(m.seq)}}},
				IntVal:      ids,
			}},
		}
		client := tfserving.NewPredictionServiceClient(conn)
		return func(ctx context.Context) error {
			resp, err := client.Predict(ctx, req)
			if err != nil {
				return err
			}
			out := resp.Outputs[m.output]
			if n := len(out.GetFloatVal()) + len(out.GetTensorContent())/4; n != m.outputLen {
				return fmt.Errorf("output %s has %d values, not %d", m.output, n, m.outputLen)
			}
			return nil
		}, func() { conn.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown API %q", api)
}

// loadTest sends o.rate requests a second for o.duration, open loop: the
// i-th is due at i/rate from the start and is sent then whatever the
// earlier ones are doing, up to o.maxFlight under way (one due beyond that
// is an error). Its latency counts from when it was due, so that a server
// falling behind shows in the latencies instead of slowing the sender.
// It is bounded: rate x duration requests, each with a 30 s deadline.
func loadTest(api string, send sender, s *server, o options) (*loadRun, error) {
	// Warm-up: the first runs of a session build its kernels.
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := send(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s warm-up request: %w", api, err)
		}
	}
	r := &loadRun{api: api, rate: o.rate}
	var err error
	if r.rssStart, err = s.rss(); err != nil {
		return nil, err
	}
	n := int(o.rate * o.duration.Seconds())
	interval := time.Duration(float64(time.Second) / o.rate)
	slots := make(chan struct{}, o.maxFlight)
	var mu sync.Mutex
	var wg sync.WaitGroup
	fail := func(err error) {
		r.errors++
		if r.firstError == "" {
			r.firstError = err.Error()
		}
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		r.sent++
		select {
		case slots <- struct{}{}:
		default:
			mu.Lock()
			fail(fmt.Errorf("%d requests already under way", o.maxFlight))
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := send(ctx)
			took := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fail(err)
				return
			}
			r.latencies = append(r.latencies, took)
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	if r.rssEnd, err = s.rss(); err != nil {
		return nil, err
	}
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	return r, nil
}

// percentile is the q-quantile (0 < q <= 1) of sorted durations, the
// nearest-rank one; 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// restLogits is the server's answer over REST for ids, flattened: the
// values checked against Python's.
func restLogits(s *server, m *served, ids []int32) ([]float32, error) {
	body, err := json.Marshal(map[string]any{"instances": [][]int32{ids}})
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Post(s.restURL+s.modelsPath+":predict", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// The main job's [batch, seq, vocab] logits.
	var out struct{ Predictions [][][]float32 }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decoding the REST answer: %w", err)
	}
	if len(out.Predictions) != 1 {
		return nil, fmt.Errorf("REST answer of batch %d, not 1", len(out.Predictions))
	}
	var flat []float32
	for _, row := range out.Predictions[0] {
		flat = append(flat, row...)
	}
	if len(flat) != m.outputLen {
		return nil, fmt.Errorf("REST answer of %d values, not %d", len(flat), m.outputLen)
	}
	return flat, nil
}
