package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/setup"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
)

// stockKeras is all a Keras user runs to open the main job's model: keras,
// numpy and the repository's own package (python/, which `make setup`
// installs), no custom_objects. argv: the model, the token ids (JSON), where
// to write the logits (little-endian float32) and their shape (JSON), and
// where to save the model again, as Keras writes it.
const stockKeras = `
import json, sys
import numpy as np
import keras
import gotf.keraslike

model = keras.models.load_model(sys.argv[1])
ids = np.array(json.load(open(sys.argv[2])), dtype="int32")
logits = np.asarray(model.predict(ids, verbose=0), dtype="<f4")
logits.tofile(sys.argv[3])
json.dump(list(logits.shape), open(sys.argv[4], "w"))
model.save(sys.argv[5])
`

// The main job's model.keras loads in a fresh Python process that imports
// only what a Keras colleague would (stockKeras), and predicts what Go
// predicts: both the SavedModel the job exported from its trained model and
// the same file loaded back in Go. The file Keras saves again (its classes
// named "gotf>TransformerBlock" ...) loads in Go and predicts the same.
func TestMainJobModelLoadsInStockKeras(t *testing.T) {
	c := config{Layers: 2, DModel: 32, Heads: 2, Seq: 16, Batch: 8, Steps: 6, Epochs: 1, LR: 1e-2,
		CorpusBytes: 1 << 16, Sample: 5, Temperature: 0.7, Out: t.TempDir(), Seed: 1}
	var out bytes.Buffer
	if err := run(context.Background(), c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	file := filepath.Join(c.Out, "model.keras")

	r := rand.New(rand.NewSource(7))
	ids := make([][]int32, 3)
	for i := range ids {
		ids[i] = make([]int32, c.Seq)
		for j := range ids[i] {
			ids[i][j] = int32(r.Intn(256))
		}
	}

	exported, err := filepath.Glob(filepath.Join(c.Out, "saved_model", "*"))
	if err != nil || len(exported) != 1 {
		t.Fatalf("want one exported version under %s, got %v (%v)", c.Out, exported, err)
	}
	sm, err := runner.Load(exported[0])
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	res, err := sm.Run(context.Background(), "serving_default", map[string]any{"token_ids": ids})
	if err != nil {
		t.Fatal(err)
	}
	trained := res["logits"]
	defer trained.Close()

	m, err := keraslike.LoadKerasModel(file, keraslike.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	loaded, err := m.Predict(ids)
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()

	resaved := filepath.Join(t.TempDir(), "resaved.keras")
	shape, logits := stockKerasPredict(t, file, ids, resaved)
	back, err := keraslike.LoadKerasModel(resaved, keraslike.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	again, err := back.Predict(ids)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	// Python and Go run TensorFlow's float32 kernels op for op; grappler may
	// fuse them differently in the two graphs, which moves the last bits of
	// each logit, or of the largest one for logits that are sums of mixed
	// signs near zero.
	tol := testutil.Tol{Rtol: 1e-5, Scaled: 1e-6}
	for _, g := range []struct {
		what string
		t    *tfgo.Tensor
	}{
		{"the job's trained model (its SavedModel, run in Go)", trained},
		{"model.keras loaded in Go", loaded},
		{"Keras' own save of it loaded in Go", again},
	} {
		got, err := tfgo.Float32s(g.t)
		if err != nil {
			t.Fatal(err)
		}
		testutil.AllCloseShapeTol(t, "logits of stock Keras vs "+g.what, shape, logits, g.t.Shape(), got, tol)
	}
}

// stockKerasPredict runs stockKeras on file and ids in a Python process of
// its own: nothing a test harness registered with Keras is there, and no
// path of the tree is added, so the package comes from the venv's install.
func stockKerasPredict(t *testing.T, file string, ids [][]int32, resave string) ([]int64, []float32) {
	t.Helper()
	py := os.Getenv("GOTF_PYTHON")
	if py == "" {
		root, err := setup.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		if err := setup.CheckPython(root); err != nil {
			t.Fatal(err)
		}
		py = filepath.Join(root, ".venv", "bin", "python")
	}
	dir := t.TempDir()
	in, logits, shape := filepath.Join(dir, "ids.json"), filepath.Join(dir, "logits.f32"), filepath.Join(dir, "shape.json")
	js, err := json.Marshal(ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, js, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", stockKeras, file, in, logits, shape, resave)
	cmd.Dir = dir
	cmd.Env = append(withoutPythonPath(os.Environ()), "KERAS_BACKEND=tensorflow", "TF_CPP_MIN_LOG_LEVEL=3",
		"CUDA_VISIBLE_DEVICES=-1", "PYTHONDONTWRITEBYTECODE=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keras.models.load_model in a fresh Python (%s): %v\n%s\nIf gotf.keraslike is missing: %s", py, err, b, setup.Fix)
	}
	var dims []int64
	if b, err := os.ReadFile(shape); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &dims); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logits)
	if err != nil {
		t.Fatal(err)
	}
	f := make([]float32, len(b)/4)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, f); err != nil {
		t.Fatal(err)
	}
	return dims, f
}

// withoutPythonPath drops PYTHONPATH, through which a developer's shell
// could offer the package from somewhere other than the install under test.
func withoutPythonPath(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "PYTHONPATH=") {
			out = append(out, e)
		}
	}
	return out
}
