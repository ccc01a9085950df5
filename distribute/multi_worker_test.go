package distribute

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Configs a multi-worker strategy cannot train with are refused before a
// server starts, naming what is wrong; without TF_CONFIG it is a one-host
// strategy, as Python's falls back to the local devices.
func TestMultiWorkerStrategyRefuses(t *testing.T) {
	cluster := ClusterSpec{"worker": {"127.0.0.1:1", "127.0.0.1:2"}}
	for _, c := range []struct {
		cfg  string // TF_CONFIG
		opts MultiWorkerOptions
		want string
	}{
		{cfg: `{"cluster": `, want: "TF_CONFIG"},
		{cfg: `{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}`, want: "task.index 3 is out of range"},
		{cfg: `{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "trainer", "index": 0}}`, want: `task.type "trainer"`},
		{cfg: `{"cluster": {"worker": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}`, want: "ParameterServerStrategy is not implemented"},
		{cfg: `{"cluster": {"worker": ["127.0.0.1:1"], "evaluator": ["127.0.0.1:2"]}, "task": {"type": "evaluator", "index": 0}}`, want: `task type "evaluator" does not train`},
		{cfg: `{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}`, want: "no task"},
		{cfg: `{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}`,
			opts: MultiWorkerOptions{Devices: []string{"/device:CPU:0", "cpu"}}, want: `malformed device name "cpu"`},
	} {
		t.Setenv("TF_CONFIG", c.cfg)
		_, err := NewMultiWorkerMirroredStrategy(c.opts)
		require.Error(t, err, c.cfg)
		assert.Contains(t, err.Error(), c.want, c.cfg)
		assert.Contains(t, err.Error(), "multi-worker strategy", c.cfg)
	}
	// A config given in Go is read instead of the environment.
	t.Setenv("TF_CONFIG", `{"cluster": `)
	cfg := TFConfig{Cluster: cluster}
	_, err := NewMultiWorkerMirroredStrategy(MultiWorkerOptions{Config: &cfg})
	assert.ErrorContains(t, err, "no task")

	t.Setenv("TF_CONFIG", "") // restored after the test
	os.Unsetenv("TF_CONFIG")
	st, err := NewMultiWorkerMirroredStrategy(MultiWorkerOptions{Devices: []string{"/device:CPU:0", "/device:CPU:1"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"/device:CPU:0", "/device:CPU:1"}, st.Devices())
	assert.Equal(t, 1, st.NumWorkers())
	assert.Equal(t, 2, st.NumReplicasInSync())
	assert.True(t, st.IsChief())
	assert.Equal(t, "", st.Target())
	assert.Nil(t, st.WatchPeers())
	assert.NoError(t, st.CheckPeers(0))
}
