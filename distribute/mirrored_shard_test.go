package distribute

import (
	"testing"

	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMirroredOptions(t *testing.T) {
	s, err := NewMirroredStrategyWithOptions([]string{"/cpu:0", "/cpu:1"}, MirroredOptions{ShardOptimizerState: true})
	require.NoError(t, err)
	assert.True(t, s.Options().ShardOptimizerState)
	assert.Equal(t, []string{"/device:CPU:0", "/device:CPU:1"}, s.Devices())
	assert.Equal(t, int64(3), s.ShardLength(5))
	assert.Equal(t, int64(2), s.ShardLength(4))
	plain, err := NewMirroredStrategy("/cpu:0")
	require.NoError(t, err)
	assert.False(t, plain.Options().ShardOptimizerState)
	var nilS *MirroredStrategy
	assert.False(t, nilS.Options().ShardOptimizerState)
	_, err = NewMirroredStrategyWithOptions([]string{"/cpu:0", "/cpu:0"}, MirroredOptions{})
	assert.ErrorContains(t, err, "given twice")
}

// Three replicas on logical CPUs: each gets its part of the mean, and the
// gathered parts are the whole on every device, in one run, repeatedly.
func TestReduceScatterAllGatherOnLogicalCPUs(t *testing.T) {
	s, err := NewMirroredStrategyWithOptions([]string{"/device:CPU:0", "/device:CPU:1", "/device:CPU:2"}, MirroredOptions{ShardOptimizerState: true})
	require.NoError(t, err)
	sc := tfgo.NewScope()
	var in []tfgo.Output
	for k, d := range s.Devices() {
		ds := sc.WithDevice(d)
		f := float32(k)
		in = append(in, tfgo.Const(ds, []float32{f, 2 * f, 3 * f, 4 * f, 5 * f, 6 * f}))
	}
	parts := s.BatchReduceScatterMean(sc, [][]tfgo.Output{in, make([]tfgo.Output, 3)})
	require.NoError(t, sc.Err())
	assert.Nil(t, parts[1][0].Op, "a tensor missing everywhere stays missing")
	got := s.BatchAllGather(sc, [][]tfgo.Output{parts[0]})
	require.NoError(t, sc.Err())
	for k, d := range s.Devices() {
		assert.Equal(t, d, parts[0][k].Op.Device())
		assert.Equal(t, d, got[0][k].Op.Device())
		assert.Equal(t, "CollectiveGatherV2", got[0][k].Op.Type())
	}
	sess, err := tfgo.NewSession(sc, s.SessionOptions())
	require.NoError(t, err)
	defer sess.Close()
	for range 3 {
		res, err := sess.Run(nil, append(append([]tfgo.Output{}, parts[0]...), got[0]...))
		require.NoError(t, err)
		for k := range 3 {
			v, _ := tfgo.Value(res[k])
			// The mean of 0, 1, 2 times (1..6) is (1..6).
			assert.Equal(t, []float32{float32(2*k + 1), float32(2*k + 2)}, v, "part %d", k)
			w, _ := tfgo.Value(res[3+k])
			assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, w, "gathered on %d", k)
		}
	}

	sum := s.AllReduceSum(sc, []tfgo.Output{
		tfgo.Const(sc.WithDevice("/device:CPU:0"), float32(1)),
		tfgo.Const(sc.WithDevice("/device:CPU:1"), float32(2)),
		tfgo.Const(sc.WithDevice("/device:CPU:2"), float32(4)),
	})
	require.NoError(t, sc.Err())
	sess2, err := tfgo.NewSession(sc, s.SessionOptions())
	require.NoError(t, err)
	defer sess2.Close()
	res, err := sess2.Run(nil, sum)
	require.NoError(t, err)
	for k := range 3 {
		v, _ := tfgo.Value(res[k])
		assert.Equal(t, float32(7), v, "sum on %d", k)
	}

	bad := tfgo.NewScope()
	s.BatchAllGather(bad, [][]tfgo.Output{{tfgo.Const(bad, float32(1)), {}, {}}})
	assert.ErrorContains(t, bad.Err(), "missing on 2 of 3 replicas")
	bad = tfgo.NewScope()
	s.BatchAllGather(bad, [][]tfgo.Output{{tfgo.Const(bad, float32(1))}})
	assert.ErrorContains(t, bad.Err(), "1 replica values, the strategy 3 replicas")
}
