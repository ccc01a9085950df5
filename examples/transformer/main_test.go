package main

import (
	"bytes"
	"context"
	"math"
	"regexp"
	"strconv"
	"testing"
)

// A small run of the main job: the loss falls below ln(256), text is sampled.
func TestMainJobTrainsAndSamples(t *testing.T) {
	c := config{Layers: 1, DModel: 32, Heads: 2, Seq: 32, Batch: 8, Steps: 60, Epochs: 2, LR: 1e-2,
		CorpusBytes: 1 << 18, Sample: 40, Temperature: 0.7, Out: t.TempDir(), Seed: 1}
	var out bytes.Buffer
	s, val := runJob(t, c, &out)
	if val > math.Log(256)-1 {
		t.Errorf("validation loss %.3f is not clearly below ln(256) = %.3f\n%s", val, math.Log(256), s)
	}
	for _, want := range []string{"TensorFlow 2.21.", "device: /job:localhost", "--- sampled from the trained model", "Epoch 2/2", "checkpoints/model_shard_2", "saved_model/60 (serving_default", "model.keras"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}

	// Run again with more epochs: it resumes from the latest checkpoint.
	c.Epochs, c.Steps = 3, 90
	out.Reset()
	if err := run(context.Background(), c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"resumed from", "model_shard_2 (step 60, epoch 2)", "Epoch 3/3", "model_shard_3", "saved_model/90"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("second run lacks %q:\n%s", want, out.String())
		}
	}
	if bytes.Contains(out.Bytes(), []byte("Epoch 1/3")) {
		t.Errorf("second run started over:\n%s", out.String())
	}

	// A third run with nothing left to train still samples from the model.
	out.Reset()
	if err := run(context.Background(), c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"already trained 3 epochs", "--- sampled from the trained model"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("third run lacks %q:\n%s", want, out.String())
		}
	}
}

// The memory levers: mixed_bfloat16 and recomputation train (the loss
// falls), the summary names the policy, and -memory prints each epoch's
// peak step memory; an unknown policy is refused before anything runs.
func TestMainJobMixedPrecisionRemat(t *testing.T) {
	c := config{Layers: 2, DModel: 32, Heads: 2, Seq: 32, Batch: 8, Steps: 40, Epochs: 2, LR: 1e-2,
		CorpusBytes: 1 << 18, Sample: 10, Temperature: 0.7, Out: t.TempDir(), Seed: 1,
		Policy: "mixed_bfloat16", Remat: true, Memory: true}
	var out bytes.Buffer
	s, val := runJob(t, c, &out)
	if val > math.Log(256)-0.5 {
		t.Errorf("validation loss %.3f is not below ln(256) = %.3f\n%s", val, math.Log(256), s)
	}
	for _, want := range []string{"Dtype policy: mixed_bfloat16 (float32: lm_head)", "epoch 2: step peak", "--- sampled from the trained model"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	c.Policy = "mixed_foo"
	out.Reset()
	if err := run(context.Background(), c, &out); err == nil || !regexp.MustCompile(`unknown dtype policy "mixed_foo"`).MatchString(err.Error()) {
		t.Errorf("policy mixed_foo: got %v", err)
	}
}

// runJob runs the main job with c, writing to out, and returns its output
// and final validation loss.
func runJob(t *testing.T, c config, out *bytes.Buffer) (string, float64) {
	t.Helper()
	if err := run(context.Background(), c, out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	m := regexp.MustCompile(`-> train ([0-9.]+), validation ([0-9.]+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no final loss line in:\n%s", s)
	}
	val, _ := strconv.ParseFloat(m[2], 64)
	return s, val
}

// Data and model parallelism on logical CPUs: the job trains with its
// batch split over 2 replicas, and with its blocks over 2 devices (the
// summary shows them); bad combinations are refused before anything runs.
func TestMainJobParallel(t *testing.T) {
	base := config{Layers: 2, DModel: 32, Heads: 2, Seq: 32, Batch: 8, Steps: 30, Epochs: 1, LR: 1e-2,
		CorpusBytes: 1 << 18, Sample: 10, Temperature: 0.7, Seed: 1}
	for _, c := range []struct {
		name         string
		replicas, mp int
		want         string
	}{
		{"replicas", 2, 1, "device: /job:localhost/replica:0/task:0/device:CPU:1"},
		{"model-parallel", 1, 2, "/device:CPU:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			cfg.Replicas, cfg.ModelParallel, cfg.Out = c.replicas, c.mp, t.TempDir()
			var out bytes.Buffer
			s, val := runJob(t, cfg, &out)
			if val > math.Log(256)-0.3 {
				t.Errorf("validation loss %.3f is not below ln(256) = %.3f\n%s", val, math.Log(256), s)
			}
			if !bytes.Contains(out.Bytes(), []byte(c.want)) {
				t.Errorf("output lacks %q:\n%s", c.want, s)
			}
		})
	}
	for _, bad := range []struct {
		replicas, mp, batch int
		want                string
	}{
		{2, 2, 8, "not implemented"},
		{3, 1, 8, "-batch 8 does not split into -replicas 3"},
		{1, 3, 8, "-model-parallel 3 is more than the 2 blocks"},
	} {
		cfg := base
		cfg.Replicas, cfg.ModelParallel, cfg.Batch, cfg.Out = bad.replicas, bad.mp, bad.batch, t.TempDir()
		var out bytes.Buffer
		if err := run(context.Background(), cfg, &out); err == nil || !bytes.Contains([]byte(err.Error()), []byte(bad.want)) {
			t.Errorf("replicas %d, model-parallel %d, batch %d: got %v, want %q", bad.replicas, bad.mp, bad.batch, err, bad.want)
		}
	}
}
