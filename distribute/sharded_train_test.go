package distribute

import (
	"math/rand"
	"testing"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// An embedding model trained with its table sharded over 3 devices (the
// lookup routed to the owning shards, each shard updated on its device
// from its own gradient) follows the plain model step for step: the same
// losses and the same table after 20 SGD steps.
func TestShardedTableTrainsLikeOneVariable(t *testing.T) {
	const vocab, dim, batch, steps = 23, 6, 16, 20
	r := rand.New(rand.NewSource(3))
	// A target row per token, in tanh's range: something to learn.
	want := make([][]float32, vocab)
	for i := range want {
		want[i] = make([]float32, dim)
		for k := range want[i] {
			want[i][k] = float32(r.Float64()*1.6 - 0.8)
		}
	}
	ids := make([][]int32, steps)
	targets := make([][][]float32, steps)
	for i := range ids {
		ids[i] = make([]int32, batch)
		targets[i] = make([][]float32, batch)
		for j := range ids[i] {
			ids[i][j] = r.Int31n(vocab)
			targets[i][j] = want[ids[i][j]]
		}
	}
	// train builds lookup -> tanh -> mean squared error against the
	// targets, and one SGD step (learning rate 2) on the table, whose
	// storage table gives: a plain variable or a sharded one.
	train := func(sharded bool) (losses []float32, final []float32) {
		s := tfgo.NewScope()
		idsP := tfgo.Placeholder(s, tfgo.Int32, batch)
		yP := tfgo.Placeholder(s, tfgo.Float, batch, dim)
		init := tfgo.GlorotUniform(7)
		var rows, full tfgo.Output
		var handles []tfgo.Output
		var inits []*tfgo.Operation
		if sharded {
			v, err := NewShardedVariable(s, "table", tfgo.Float, []int64{vocab, dim}, init, FixedShardsPartitioner(3), cpuDevices)
			require.NoError(t, err)
			rows, full = v.Lookup(s, idsP), v.Value(s)
			for _, sh := range v.Shards() {
				handles = append(handles, sh.Handle())
			}
			inits = append(inits, v.Initializer(s))
		} else {
			v := tfgo.NewVariable(s, "table", tfgo.Float, []int64{vocab, dim}, init)
			rows = tfgo.ResourceGather(s, v.Handle(), idsP, tfgo.Float)
			full = v.Value()
			handles = []tfgo.Output{v.Handle()}
			inits = append(inits, v.Initializer())
		}
		d := tfgo.Sub(s, tfgo.Tanh(s, rows), yP)
		loss := tfgo.Mean(s, tfgo.Mul(s, d, d), tfgo.Const(s, []int32{0, 1}))
		grads := tfgo.Gradients(s, []tfgo.Output{loss}, handles, nil)
		var updates []*tfgo.Operation
		for i, h := range handles {
			us := s.WithControlDependencies(loss.Op)
			if dev := h.Op.Device(); dev != "" {
				us = us.WithDevice(dev) // each shard updated where it lives
			}
			updates = append(updates, tfgo.ResourceApplyGradientDescent(us, h, tfgo.Const(us, float32(2)), grads[i]))
		}
		require.NoError(t, s.Err())
		sess := newSession(t, s)
		_, err := sess.Run(nil, nil, inits...)
		require.NoError(t, err)
		for i := 0; i < steps; i++ {
			out, err := sess.Run(map[tfgo.Output]any{idsP: ids[i], yP: targets[i]}, []tfgo.Output{loss}, updates...)
			require.NoError(t, err)
			v, err := tfgo.Float32s(out[0])
			require.NoError(t, err)
			losses = append(losses, v[0])
		}
		return losses, fetchFloats(t, sess, full)[0]
	}
	wantLoss, wantTable := train(false)
	gotLoss, gotTable := train(true)
	t.Logf("loss %.4f -> %.4f (plain), %.4f -> %.4f (3 shards)", wantLoss[0], wantLoss[steps-1], gotLoss[0], gotLoss[steps-1])
	require.Less(t, wantLoss[steps-1], 0.8*wantLoss[0], "the plain model learns")
	testutil.AllClose(t, "losses", wantLoss, gotLoss, 1e-5, 0)
	testutil.AllClose(t, "table after training", wantTable, gotTable, 1e-5, 0)
}
