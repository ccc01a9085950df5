package distribute

import (
	"testing"

	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewMirroredStrategyDevices(t *testing.T) {
	s, err := NewMirroredStrategy()
	require.NoError(t, err)
	assert.Equal(t, []string{"/device:CPU:0"}, s.Devices())
	assert.Equal(t, 1, s.NumReplicas())

	s, err = NewMirroredStrategy("/cpu:0", "CPU:2", "/job:localhost/replica:0/task:0/device:CPU:1")
	require.NoError(t, err)
	assert.Equal(t, []string{"/device:CPU:0", "/device:CPU:2", "/device:CPU:1"}, s.Devices())
	assert.Equal(t, map[string]int32{"CPU": 3}, s.SessionOptions().DeviceCount)
	assert.Equal(t, "auto", s.communicationHint())

	g, err := NewMirroredStrategy("/device:GPU:0", "/gpu:1")
	require.NoError(t, err)
	assert.Nil(t, g.SessionOptions().DeviceCount)
	assert.Equal(t, "nccl", g.communicationHint())
	assert.NotEqual(t, s.groupKey, g.groupKey, "one group key per strategy")

	for in, want := range map[string]string{
		"/device:CPU:0,/cpu:0":            "device /device:CPU:0 given twice",
		"/device:CPU:0,cpu":               `malformed device name "cpu"`,
		"/device:CPU:-1":                  "malformed",
		"/device:CPU:0,/device:GPU:0":     "two types",
		"/job:worker/task:1/device:CPU:0": "NewMultiWorkerMirroredStrategy",
	} {
		_, err := NewMirroredStrategy(splitComma(in)...)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func TestNilStrategy(t *testing.T) {
	var s *MirroredStrategy
	assert.Nil(t, s.Devices())
	assert.Equal(t, 0, s.NumReplicas())
	assert.Error(t, s.CheckDevices(nil))
	sc := tfgo.NewScope()
	assert.Nil(t, s.AllReduceMean(sc, []tfgo.Output{tfgo.Const(sc, float32(1))}))
	assert.Error(t, sc.Err())
}

// Replicas on logical CPUs average their values in one run, repeatedly,
// each result on its own device.
func TestAllReduceMeanOnLogicalCPUs(t *testing.T) {
	s, err := NewMirroredStrategy("/device:CPU:0", "/device:CPU:1", "/device:CPU:2")
	require.NoError(t, err)
	sc := tfgo.NewScope()
	var a, b []tfgo.Output
	for k, d := range s.Devices() {
		ds := sc.WithDevice(d)
		a = append(a, tfgo.Const(ds, []float32{float32(k), 2 * float32(k)}))
		b = append(b, tfgo.Const(ds, [][]float32{{float32(k * k)}}))
	}
	out := s.BatchAllReduceMean(sc, [][]tfgo.Output{a, b, make([]tfgo.Output, 3)})
	require.NoError(t, sc.Err())
	require.Len(t, out, 3)
	assert.Nil(t, out[2][0].Op, "a tensor missing everywhere stays missing")
	for k, d := range s.Devices() {
		assert.Equal(t, d, out[0][k].Op.Device())
	}
	sess, err := tfgo.NewSession(sc, s.SessionOptions())
	require.NoError(t, err)
	defer sess.Close()
	devs, err := sess.ListDevices()
	require.NoError(t, err)
	require.NoError(t, s.CheckDevices(devs))
	for range 3 {
		res, err := sess.Run(nil, append(append([]tfgo.Output{}, out[0]...), out[1]...))
		require.NoError(t, err)
		for k := range 3 {
			v, _ := tfgo.Value(res[k])
			assert.Equal(t, []float32{1, 2}, v)
			w, _ := tfgo.Value(res[3+k])
			assert.Equal(t, [][]float32{{5.0 / 3}}, w)
		}
	}

	missing, err := NewMirroredStrategy("/device:CPU:0", "/device:CPU:7")
	require.NoError(t, err)
	err = missing.CheckDevices(devs)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "device /device:CPU:7 does not exist")
	assert.Contains(t, err.Error(), "/device:CPU:2")

	partial := tfgo.NewScope()
	s.AllReduceMean(partial, []tfgo.Output{tfgo.Const(partial, float32(1)), {}, {}})
	assert.ErrorContains(t, partial.Err(), "missing on 2 of 3 replicas")
}
