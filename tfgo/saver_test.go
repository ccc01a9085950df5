package tfgo

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/killtest"
	"github.com/gotf/gotf/savedmodel"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SaveV2 run from Go writes a checkpoint Python reads; a checkpoint Python
// writes is restored into Go's variables by RestoreV2; a bad one is an
// error naming the variable.
func TestSaverInGraphInteroperatesWithPython(t *testing.T) {
	s := NewScope()
	dense := s.SubScope("dense")
	k := NewVariable(dense, "kernel", Float, []int64{2, 3}, RandomNormal(0, 1, 3))
	b := NewVariable(dense, "bias", Half, []int64{3}, Constant(0.5))
	step := NewVariable(s, "step", Int64, []int64{}, Constant(7), Trainable(false))
	saver := NewSaver(s, nil)
	init := GlobalVariablesInitializer(s)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "go")
	require.NoError(t, saver.Save(sess, prefix))
	vals, err := sess.Run(nil, []Output{k.Value(), b.Value(), step.Value()})
	require.NoError(t, err)

	pre, err := NewTensor(prefix)
	require.NoError(t, err)
	pyPrefix, err := NewTensor(filepath.Join(dir, "py"))
	require.NoError(t, err)
	ref := python(t, `
r = tf.train.load_checkpoint(inputs["prefix"].item().decode())
outputs["k"] = r.get_tensor("dense/kernel")
outputs["b"] = r.get_tensor("dense/bias")
outputs["step"] = r.get_tensor("step")
# A checkpoint of Python's own, name-based, for Go to restore.
tf.compat.v1.reset_default_graph()
with tf.compat.v1.Graph().as_default():
    kv = tf.compat.v1.get_variable("dense/kernel", initializer=tf.constant([[1., 2., 3.], [4., 5., 6.]]), use_resource=True)
    bv = tf.compat.v1.get_variable("dense/bias", initializer=tf.constant([1., 2., 3.], tf.float16), use_resource=True)
    sv = tf.compat.v1.get_variable("step", initializer=tf.constant(99, tf.int64), use_resource=True)
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().save(sess, inputs["py"].item().decode(), write_meta_graph=False)
        outputs["pk"], outputs["pb"], outputs["ps"] = sess.run([kv, bv, sv])
`, map[string]*Tensor{"prefix": pre, "py": pyPrefix})
	assert.Equal(t, vals[0].Data(), ref["k"].Data())
	assert.Equal(t, vals[1].Data(), ref["b"].Data())
	assert.Equal(t, vals[2].Data(), ref["step"].Data())

	require.NoError(t, saver.Restore(sess, filepath.Join(dir, "py")))
	got, err := sess.Run(nil, []Output{k.Read(s), b.Read(s), step.Read(s)})
	require.NoError(t, err)
	for i, key := range []string{"pk", "pb", "ps"} {
		assert.Equal(t, ref[key].Data(), got[i].Data(), key)
	}

	// A checkpoint without these variables: the error names one.
	s2 := NewScope()
	NewVariable(s2.SubScope("other"), "w", Float, []int64{2}, Zeros())
	sv2 := NewSaver(s2, nil)
	sess2, err := NewSession(s2, SessionOptions{})
	require.NoError(t, err)
	defer sess2.Close()
	err = sv2.Restore(sess2, prefix)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "other/w")
	require.Error(t, sv2.Restore(sess2, filepath.Join(dir, "missing")))
}

// Successive saves at one prefix alternate between one data shard and two
// (SaveV2 per half and MergeV2Checkpoints; a single variable through Go),
// so that a save never renames a data file over one the previous index
// references; each checkpoint restores, Python reads the two-shard ones,
// and only the current checkpoint's files stay.
func TestSaverAlternatesShards(t *testing.T) {
	for _, count := range []int{3, 1} {
		s := NewScope()
		var vars []*Variable
		var holders []Output
		var assigns []*Operation
		for i := range count {
			v := NewVariable(s, fmt.Sprintf("v%d", i), Float, []int64{int64(i + 2)}, Zeros())
			p := Placeholder(s, Float, int64(i+2))
			vars, holders, assigns = append(vars, v), append(holders, p), append(assigns, v.Assign(s, p))
		}
		saver := NewSaver(s, vars)
		init := GlobalVariablesInitializer(s)
		sess, err := NewSession(s, SessionOptions{})
		require.NoError(t, err)
		defer sess.Close()
		_, err = sess.Run(nil, nil, init)
		require.NoError(t, err)
		dir := t.TempDir()
		prefix := filepath.Join(dir, "ckpt")
		values := func(gen int) map[Output]any {
			feeds := map[Output]any{}
			for i, p := range holders {
				feeds[p] = killtest.Values(gen, i, i+2)
			}
			return feeds
		}
		for gen, shards := range []int{1, 2, 1, 2} {
			_, err = sess.Run(values(gen), nil, assigns...)
			require.NoError(t, err)
			require.NoError(t, saver.Save(sess, prefix))
			var want []string
			for i := range shards {
				want = append(want, filepath.Base(savedmodel.DataFilename(prefix, i, shards)))
			}
			want = append(want, "ckpt.index")
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			var got []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			require.Equal(t, want, got, "%d variables, save %d", count, gen)

			_, err = sess.Run(values(99), nil, assigns...)
			require.NoError(t, err)
			require.NoError(t, saver.Restore(sess, prefix))
			for i, v := range vars {
				out, err := sess.Run(nil, []Output{v.Value()})
				require.NoError(t, err)
				got, err := Float32s(out[0])
				require.NoError(t, err)
				require.Equal(t, killtest.Values(gen, i, i+2), got, "%d variables, save %d, %s", count, gen, v.Name())
			}
			if shards == 2 && gen < 2 {
				pre, err := NewTensor(prefix)
				require.NoError(t, err)
				ref := python(t, `
r = tf.train.load_checkpoint(inputs["prefix"].item().decode())
for i, name in enumerate(sorted(r.get_variable_to_shape_map())):
    outputs[name] = r.get_tensor(name)
`, map[string]*Tensor{"prefix": pre})
				require.Len(t, ref, count)
				for i, v := range vars {
					got, err := Float32s(ref[v.Name()])
					require.NoError(t, err)
					require.Equal(t, killtest.Values(gen, i, i+2), got, "Python reading %s", v.Name())
				}
			}
		}
	}
}
