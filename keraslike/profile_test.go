package keraslike

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Profile traces the steps it names, and only those: each file is a
// Chrome trace whose op events include the model's MatMuls.
func TestProfileWritesChosenSteps(t *testing.T) {
	m := mirrorDenseModel(t)
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: MeanSquaredError{}}))
	dir := t.TempDir()
	p := &Profile{Dir: dir, Steps: []int{2, 5}}
	_, err := m.Fit(context.Background(), mirrorDenseData(), FitOptions{Epochs: 2, StepsPerEpoch: 3, Callbacks: []Callback{p}})
	require.NoError(t, err)
	want := []string{filepath.Join(dir, "step-2.trace.json"), filepath.Join(dir, "step-5.trace.json")}
	require.Equal(t, want, p.Written)
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, files, 2, "only the chosen steps")
	for _, path := range want {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var doc struct {
			TraceEvents []struct {
				Ph   string         `json:"ph"`
				Name string         `json:"name"`
				Args map[string]any `json:"args"`
			} `json:"traceEvents"`
		}
		require.NoError(t, json.Unmarshal(b, &doc), path)
		matmuls := 0
		for _, e := range doc.TraceEvents {
			if e.Ph == "X" && strings.Contains(e.Name, "MatMul") {
				matmuls++
			}
		}
		// Two Dense layers: forward and backward MatMuls.
		assert.GreaterOrEqual(t, matmuls, 4, "%s: MatMul events", path)
	}

	bad := &Profile{Steps: []int{1}}
	_, err = m.Fit(context.Background(), mirrorDenseData(), FitOptions{Epochs: 1, StepsPerEpoch: 2, Callbacks: []Callback{bad}})
	assert.ErrorContains(t, err, "Profile: empty Dir")
}
