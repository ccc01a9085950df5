package tfgo

import (
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/savedmodel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A StreamingSaver's checkpoint (3 shards, O_DIRECT) is read by Python with
// equal values; it restores Go's variables after they changed (two of one
// shape each to its own value); a saver over
// a subset restores from a Python checkpoint that holds more; a variable of
// another shape is refused, naming the key, before anything changes.
func TestStreamingSaver(t *testing.T) {
	s := NewScope()
	dense := s.SubScope("dense")
	k := NewVariable(dense, "kernel", Float, []int64{300, 700}, RandomNormal(0, 1, 3))
	k2 := NewVariable(dense, "kernel2", Float, []int64{300, 700}, RandomNormal(0, 1, 5)) // k's shape, right after it
	b := NewVariable(dense, "bias", Half, []int64{700}, RandomNormal(0, 1, 4))
	step := NewVariable(s, "step", Int64, []int64{}, Constant(7), Trainable(false))
	vars := []*Variable{k, b, step, k2}
	saver := NewStreamingSaver(s, nil, nil)
	renamed := NewStreamingSaver(s, []*Variable{k}, []string{"model/kernel/.ATTRIBUTES/VARIABLE_VALUE"})
	init := GlobalVariablesInitializer(s)
	var zero []*Operation
	for _, v := range vars {
		zero = append(zero, v.Assign(s, ZerosLike(s, v.Value())))
	}
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	read := func() []*Tensor {
		out, err := sess.Run(nil, []Output{k.Value(), b.Value(), step.Value(), k2.Value()})
		require.NoError(t, err)
		return out
	}
	want := read()

	dir := t.TempDir()
	prefix := filepath.Join(dir, "go")
	require.NoError(t, saver.Save(sess, prefix, savedmodel.WriteOptions{NumShards: 3, IO: savedmodel.DirectIO}))
	require.NoError(t, renamed.Save(sess, filepath.Join(dir, "renamed"), savedmodel.WriteOptions{}))
	pre, err := NewTensor(prefix)
	require.NoError(t, err)
	py, err := NewTensor(filepath.Join(dir, "py"))
	require.NoError(t, err)
	ren, err := NewTensor(filepath.Join(dir, "renamed"))
	require.NoError(t, err)
	ref := python(t, `
r = tf.train.load_checkpoint(inputs["prefix"].item().decode())
outputs["k"], outputs["b"], outputs["step"] = r.get_tensor("dense/kernel"), r.get_tensor("dense/bias"), r.get_tensor("step")
outputs["renamed"] = tf.train.load_checkpoint(inputs["renamed"].item().decode()).get_tensor("model/kernel/.ATTRIBUTES/VARIABLE_VALUE")
# Python's own checkpoint with one more variable, for a subset restore.
with tf.compat.v1.Graph().as_default():
    kv = tf.compat.v1.get_variable("dense/kernel", initializer=tf.random.stateless_normal([300, 700], seed=[1, 2]), use_resource=True)
    xv = tf.compat.v1.get_variable("extra", initializer=tf.constant([1., 2.]), use_resource=True)
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().save(sess, inputs["py"].item().decode(), write_meta_graph=False)
        outputs["pk"] = sess.run(kv)
`, map[string]*Tensor{"prefix": pre, "py": py, "renamed": ren})
	for i, key := range []string{"k", "b", "step"} {
		assert.Equal(t, want[i].Data(), ref[key].Data(), key)
	}
	assert.Equal(t, want[0].Data(), ref["renamed"].Data())

	// From 3 shards read in parallel with O_DIRECT, and from 1 read by one
	// goroutine (where k and k2 come one after the other).
	one := filepath.Join(dir, "one")
	require.NoError(t, saver.Save(sess, one, savedmodel.WriteOptions{}))
	for _, p := range []string{prefix, one} {
		_, err = sess.Run(nil, nil, zero...)
		require.NoError(t, err)
		require.NoError(t, saver.Restore(sess, p, savedmodel.ReadOptions{IO: savedmodel.DirectIO}))
		for i, got := range read() {
			assert.Equal(t, want[i].Data(), got.Data(), vars[i].Name())
		}
	}

	sub := NewStreamingSaver(s, []*Variable{k}, nil)
	require.NoError(t, sub.Restore(sess, filepath.Join(dir, "py"), savedmodel.ReadOptions{}))
	assert.Equal(t, ref["pk"].Data(), read()[0].Data())

	// Another shape under the same key: refused before any assign.
	s2 := NewScope()
	NewVariable(s2, "step", Int64, []int64{}, Constant(1))
	odd := NewVariable(s2.SubScope("dense"), "kernel", Float, []int64{700, 300}, Zeros())
	sv2 := NewStreamingSaver(s2, nil, nil)
	sess2, err := NewSession(s2, SessionOptions{})
	require.NoError(t, err)
	defer sess2.Close()
	_, err = sess2.Run(nil, nil, GlobalVariablesInitializer(s2))
	require.NoError(t, err)
	err = sv2.Restore(sess2, prefix, savedmodel.ReadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"dense/kernel"`)
	assert.Contains(t, err.Error(), "[700 300]")
	got, err := sess2.Run(nil, []Output{Variables(s2)[0].Value(), odd.Value()})
	require.NoError(t, err)
	v, err := Value(got[0])
	require.NoError(t, err)
	assert.Equal(t, int64(1), v, "step changed by a refused restore")
	err = sv2.Restore(sess2, filepath.Join(dir, "missing"), savedmodel.ReadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.index")
}
