package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gotf/gotf/examples/transformer/job"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
)

// served is the model under test: the version the server will serve (the
// highest of base) and its serving signature's single input and output.
type served struct {
	base, dir     string
	version       int64
	sig           string
	input, output string
	seq           int
	outputLen     int    // values of the output at batch 1
	trained       string // how it was obtained, for the report
}

// mainJobModel is the main job's export: o.model, else
// ROOT/out/transformer/saved_model when its latest version loads, else a
// run of the job for o.steps steps into tmp.
func mainJobModel(root, tmp string, o options) (*served, error) {
	if o.model != "" {
		return inspect(o.model, "given with -model")
	}
	existing := filepath.Join(root, "out", "transformer", "saved_model")
	if m, err := inspect(existing, "the last `make run`"); err == nil {
		return m, nil
	} else if !os.IsNotExist(err) {
		log.Printf("not reusing %s: %v", existing, err)
	}
	var c job.Config
	c.RegisterFlags(flag.NewFlagSet("job", flag.ContinueOnError))
	c.Steps, c.Epochs, c.CorpusBytes, c.Sample, c.Out = o.steps, 1, 1<<20, 1, filepath.Join(tmp, "job")
	log.Printf("training the main job for %d steps into %s", c.Steps, c.Out)
	start := time.Now()
	if err := job.Run(context.Background(), c, io.Discard); err != nil {
		return nil, fmt.Errorf("training the main job: %w", err)
	}
	return inspect(filepath.Join(c.Out, "saved_model"), fmt.Sprintf("trained here: %d steps of the main job in %s", c.Steps, time.Since(start).Round(time.Second)))
}

// inspect loads the highest version under base and reads its
// serving_default signature, which must take one int32 [batch, seq] input
// and give one output, as the main job's does.
func inspect(base, how string) (*served, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	m := &served{base: base, version: -1, sig: "serving_default", trained: how}
	for _, e := range entries {
		if v, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && e.IsDir() && v > m.version {
			m.version = v
		}
	}
	if m.version < 0 {
		return nil, fmt.Errorf("%s holds no numeric version: %w", base, os.ErrNotExist)
	}
	m.dir = filepath.Join(base, strconv.FormatInt(m.version, 10))
	model, err := runner.Load(m.dir)
	if err != nil {
		return nil, err
	}
	defer model.Close()
	sig, ok := model.Signature(m.sig)
	if !ok {
		return nil, fmt.Errorf("%s has no %s signature", m.dir, m.sig)
	}
	if len(sig.Inputs) != 1 || len(sig.Outputs) != 1 {
		return nil, fmt.Errorf("%s: %s has %d inputs and %d outputs, not one of each", m.dir, m.sig, len(sig.Inputs), len(sig.Outputs))
	}
	m.input, m.output = sig.InputNames()[0], sig.OutputNames()[0]
	in := sig.Inputs[m.input]
	if in.DType != tfgo.Int32 || in.Shape.UnknownRank || len(in.Shape.Dims) != 2 || in.Shape.Dims[1] <= 0 {
		return nil, fmt.Errorf("%s: %s's input %s is %v %v, not int32 [batch, seq]", m.dir, m.sig, m.input, in.DType, in.Shape)
	}
	m.seq = int(in.Shape.Dims[1])
	out := sig.Outputs[m.output]
	if out.DType != tfgo.Float || out.Shape.UnknownRank || len(out.Shape.Dims) < 1 {
		return nil, fmt.Errorf("%s: %s's output %s is %v %v, not float32 [batch, ...]", m.dir, m.sig, m.output, out.DType, out.Shape)
	}
	m.outputLen = 1
	for _, d := range out.Shape.Dims[1:] {
		if d <= 0 {
			return nil, fmt.Errorf("%s: %s's output %s has shape %v, not a static one after the batch", m.dir, m.sig, m.output, out.Shape)
		}
		m.outputLen *= int(d)
	}
	return m, nil
}

// tokenIDs is one window of byte tokens, the same for every request.
func tokenIDs(seq int) []int32 {
	r := rand.New(rand.NewSource(1))
	ids := make([]int32, seq)
	for i := range ids {
		ids[i] = int32(r.Intn(256))
	}
	return ids
}
