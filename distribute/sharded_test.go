package distribute

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The package's tests share one Python worker (internal/pyref), stopped
// here.
func TestMain(m *testing.M) { interop.Main(m) }

// threeCPUs gives /device:CPU:0..2.
var threeCPUs = tfgo.SessionOptions{DeviceCount: map[string]int32{"CPU": 3}}

var cpuDevices = []string{"/device:CPU:0", "/device:CPU:1", "/device:CPU:2"}

func newSession(t *testing.T, s *tfgo.Scope) *tfgo.Session {
	t.Helper()
	sess, err := tfgo.NewSession(s, threeCPUs)
	require.NoError(t, err)
	t.Cleanup(func() { sess.Close() })
	return sess
}

func fetchFloats(t *testing.T, sess *tfgo.Session, outs ...tfgo.Output) [][]float32 {
	t.Helper()
	res, err := sess.Run(nil, outs)
	require.NoError(t, err)
	var vals [][]float32
	for _, r := range res {
		v, err := tfgo.Float32s(r)
		require.NoError(t, err)
		vals = append(vals, v)
		r.Close()
	}
	return vals
}

func pyFloats(t *testing.T, ref map[string]*tfgo.Tensor, key string) []float32 {
	t.Helper()
	return pyValues(t, ref, key, tfgo.Float32s)
}

func pyInts(t *testing.T, ref map[string]*tfgo.Tensor, key string) []int64 {
	t.Helper()
	return pyValues(t, ref, key, tfgo.Int64s)
}

// pyValues is Python's output key read with conv.
func pyValues[T any](t *testing.T, ref map[string]*tfgo.Tensor, key string, conv func(*tfgo.Tensor) ([]T, error)) []T {
	t.Helper()
	require.Contains(t, ref, key)
	v, err := conv(ref[key])
	require.NoError(t, err)
	return v
}

func pyStrings(t *testing.T, ref map[string]*tfgo.Tensor, key string) []string {
	t.Helper()
	require.Contains(t, ref, key)
	b, err := ref[key].Strings()
	require.NoError(t, err)
	out := make([]string, len(b))
	for i := range b {
		out[i] = string(b[i])
	}
	return out
}

// table is the value the tests give a [rows, cols] variable, the same
// formula as pyTable (exact in float32).
func table(rows, cols int) [][]float32 {
	out := make([][]float32, rows)
	for r := range out {
		out[r] = make([]float32, cols)
		for c := range out[r] {
			out[r][c] = float32(r*cols+c)*0.25 - 3
		}
	}
	return out
}

const pyTable = `
def table(rows, cols):
    return (np.arange(rows * cols).reshape(rows, cols) * 0.25 - 3).astype(np.float32)
`

func flat(v [][]float32) []float32 {
	var out []float32
	for _, r := range v {
		out = append(out, r...)
	}
	return out
}

type partitionCase struct {
	kind  string // fixed, min, max
	a     int64  // num_shards, min_shard_bytes, max_shard_bytes
	b     int    // max_shards (0: Python's None for max)
	shape []int64
	dtype tfgo.DataType
	py    string // the dtype's Python name
}

func (c partitionCase) partitioner() Partitioner {
	switch c.kind {
	case "fixed":
		return FixedShardsPartitioner(int(c.a))
	case "min":
		return MinSizePartitioner(c.a, c.b)
	}
	return MaxSizePartitioner(c.a, c.b)
}

func (c partitionCase) python() string {
	var p string
	switch c.kind {
	case "fixed":
		p = fmt.Sprintf("P.FixedShardsPartitioner(%d)", c.a)
	case "min":
		p = fmt.Sprintf("P.MinSizePartitioner(%d, %d)", c.a, c.b)
	default:
		mx := "None"
		if c.b > 0 {
			mx = fmt.Sprint(c.b)
		}
		p = fmt.Sprintf("P.MaxSizePartitioner(%d, %s)", c.a, mx)
	}
	dims := make([]string, len(c.shape))
	for i, d := range c.shape {
		dims[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%s(tf.TensorShape([%s]), tf.%s)[0]", p, strings.Join(dims, ", "), c.py)
}

var partitionCases = []partitionCase{
	{"fixed", 3, 0, []int64{10, 3}, tfgo.Float, "float32"},
	{"fixed", 4, 0, []int64{10}, tfgo.Float, "float32"},
	{"fixed", 1, 0, []int64{5, 5}, tfgo.Double, "float64"},
	{"min", 256 << 10, 1, []int64{1024, 1024}, tfgo.Float, "float32"},
	{"min", 256 << 10, 100, []int64{1024, 1024}, tfgo.Float, "float32"},
	{"min", 256 << 10, 8, []int64{1024, 1024}, tfgo.Float, "float32"},
	{"min", 4, 2, []int64{6, 1}, tfgo.Float, "float32"},
	{"min", 4, 10, []int64{6, 1}, tfgo.Float, "float32"},
	{"min", 100, 50, []int64{7, 3}, tfgo.Double, "float64"},
	{"min", 7, 50, []int64{13, 3}, tfgo.BFloat16, "bfloat16"},
	{"min", 33, 50, []int64{20, 2}, tfgo.String, "string"},
	{"min", 1000, 50, []int64{3, 3}, tfgo.Int8, "int8"},
	{"max", 4, 0, []int64{6, 1}, tfgo.Float, "float32"},
	{"max", 4, 2, []int64{6, 1}, tfgo.Float, "float32"},
	{"max", 1024, 0, []int64{6, 1}, tfgo.Float, "float32"},
	{"max", 100, 0, []int64{1000, 7}, tfgo.Float, "float32"},
	{"max", 29, 0, []int64{10, 7}, tfgo.Float, "float32"}, // below one row: one row per shard
	{"max", 1 << 20, 0, []int64{100000, 64}, tfgo.BFloat16, "bfloat16"},
	{"max", 50, 3, []int64{9, 5}, tfgo.String, "string"},
	{"max", 10, 0, []int64{7, 3}, tfgo.Int32, "int32"},
	{"max", 3, 0, []int64{7, 3}, tfgo.Bool, "bool"},
}

func TestPartitionersMatchPython(t *testing.T) {
	var b strings.Builder
	b.WriteString("from tensorflow.python.distribute import sharded_variable as P\nres = []\n")
	for _, c := range partitionCases {
		fmt.Fprintf(&b, "res.append(%s)\n", c.python())
	}
	b.WriteString("outputs['n'] = np.array(res, dtype=np.int64)\n")
	want := pyInts(t, interop.Python(t, b.String(), nil), "n")
	require.Len(t, want, len(partitionCases))
	for i, c := range partitionCases {
		got, err := c.partitioner()(c.shape, c.dtype)
		require.NoError(t, err, c.python())
		assert.Equal(t, want[i], int64(got), c.python())
	}
}

func TestPartitionerBadArguments(t *testing.T) {
	for _, c := range []struct {
		p    Partitioner
		want string
	}{
		{FixedShardsPartitioner(0), "num_shards must be positive"},
		{MinSizePartitioner(0, 1), "min_shard_bytes must be positive"},
		{MinSizePartitioner(1, 0), "max_shards must be positive"},
		{MaxSizePartitioner(0, 0), "max_shard_bytes must be positive"},
		{MaxSizePartitioner(1, -1), "max_shards must be positive"},
	} {
		_, err := c.p([]int64{4, 4}, tfgo.Float)
		assert.ErrorContains(t, err, c.want)
	}
	_, err := FixedShardsPartitioner(2)(nil, tfgo.Float)
	assert.ErrorContains(t, err, "scalar")
	// A partition smaller than its shard count (see TestBadInput).
	_, err = FixedShardsPartitioner(3)([]int64{2, 4}, tfgo.Float)
	assert.ErrorContains(t, err, "axis 0 has 2 rows, fewer than the 3 shards")
	_, err = MaxSizePartitioner(8, 0)([]int64{3, 0}, tfgo.Float)
	assert.ErrorContains(t, err, "no elements")
}

// The shards, their names, shapes and devices are those of the
// ShardedVariable a ParameterServerStrategy (two in-process parameter
// servers) makes with the same partitioner; its embedding lookup and
// gradients equal Lookup's; its tf.train.Checkpoint restores in Go into
// other shard counts; the Go checkpoint's slices are the ones Python
// wrote.
func TestShardedVariableMatchesParameterServerStrategy(t *testing.T) {
	cases := []partitionCase{
		{"fixed", 3, 0, []int64{10, 3}, tfgo.Float, "float32"},
		{"fixed", 3, 0, []int64{7}, tfgo.Float, "float32"},
		{"fixed", 2, 0, []int64{2, 4}, tfgo.Float, "float32"},
		{"fixed", 4, 0, []int64{11, 2}, tfgo.Float, "float32"},
		{"max", 24, 0, []int64{9, 2}, tfgo.Float, "float32"},
		{"min", 16, 4, []int64{5, 4}, tfgo.Float, "float32"},
	}
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString(pyTable + `
import socket
from tensorflow.python.distribute import sharded_variable as P
def port():
    s = socket.socket(); s.bind(("localhost", 0)); p = s.getsockname()[1]; s.close(); return p
spec = {"chief": ["localhost:%d" % port()], "worker": ["localhost:%d" % port()],
        "ps": ["localhost:%d" % port(), "localhost:%d" % port()]}
cs = tf.train.ClusterSpec(spec)
servers = [tf.distribute.Server(cs, job_name=j, task_index=i, protocol="grpc", start=True)
           for j in ("worker", "ps") for i in range(len(spec[j]))]
cr = tf.distribute.cluster_resolver.SimpleClusterResolver(cs, rpc_layer="grpc", task_type="chief", task_id=0)
def make(partitioner, shape, name):
    st = tf.distribute.experimental.ParameterServerStrategy(cr, variable_partitioner=partitioner)
    with st.scope():
        init = table(shape[0], int(np.prod(shape[1:]))).reshape(shape)
        return tf.Variable(init, name=name)
`)
	for i, c := range cases {
		fmt.Fprintf(&b, "v = make(%s, %v, 'emb')\n", c.python()[:strings.Index(c.python(), "(tf.TensorShape")], pyList(c.shape))
		fmt.Fprintf(&b, "outputs['rows%d'] = np.array([x.shape[0] for x in v.variables] if isinstance(v, P.ShardedVariable) else [v.shape[0]], dtype=np.int64)\n", i)
		fmt.Fprintf(&b, "outputs['names%d'] = np.array([x.name.encode() for x in (v.variables if isinstance(v, P.ShardedVariable) else [v])], dtype=object)\n", i)
		fmt.Fprintf(&b, "outputs['ps%d'] = np.array([int(x.device.split('task:')[1].split('/')[0]) for x in (v.variables if isinstance(v, P.ShardedVariable) else [v])], dtype=np.int64)\n", i)
	}
	fmt.Fprintf(&b, `
v = make(P.FixedShardsPartitioner(3), [10, 3], 'emb')
ids = tf.constant([[9, 0, 3], [4, 3, 7]], dtype=tf.int64)
w = tf.constant(np.arange(18).reshape(2, 3, 3) * 0.5 - 2, dtype=tf.float32)
with tf.GradientTape() as tape:
    out = tf.nn.embedding_lookup(v, ids)
    loss = tf.reduce_sum(out * w)
grads = tape.gradient(loss, v.variables)
outputs['lookup'] = out.numpy()
for i, g in enumerate(grads):
    outputs['grad%%d' %% i] = tf.convert_to_tensor(g).numpy()
prefix = tf.train.Checkpoint(emb=v).write(%q)
outputs['prefix'] = np.array(prefix.encode(), dtype=object)
`, filepath.Join(dir, "pss"))
	ref := interop.Python(t, b.String(), nil)

	for i, c := range cases {
		s := tfgo.NewScope()
		v, err := NewShardedVariable(s, "emb", c.dtype, c.shape, tfgo.Zeros(), c.partitioner(), []string{"/device:CPU:0", "/device:CPU:1"})
		require.NoError(t, err, c.python())
		var rows []int64
		var names []string
		for _, sh := range v.Shards() {
			rows = append(rows, sh.Shape()[0])
			names = append(names, sh.Name()+":0")
		}
		assert.Equal(t, pyInts(t, ref, fmt.Sprintf("rows%d", i)), rows, c.python())
		assert.Equal(t, pyStrings(t, ref, fmt.Sprintf("names%d", i)), names, c.python())
		// Round robin over the two devices, as over the two parameter servers.
		var ps []int64
		for j, sh := range v.Shards() {
			ps = append(ps, int64(j%2))
			assert.Equal(t, fmt.Sprintf("/device:CPU:%d", j%2), sh.Handle().Op.Device())
		}
		assert.Equal(t, pyInts(t, ref, fmt.Sprintf("ps%d", i)), ps, c.python())
		assert.Equal(t, "emb", v.Name())
		assert.Equal(t, c.shape, v.Shape())
	}

	// Lookup and its gradients against the strategy's.
	s := tfgo.NewScope()
	v, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{10, 3}, tfgo.InitialValue(table(10, 3)), FixedShardsPartitioner(3), cpuDevices)
	require.NoError(t, err)
	ids := tfgo.Const(s, [][]int64{{9, 0, 3}, {4, 3, 7}})
	out := v.Lookup(s, ids)
	w := make([][][]float32, 2)
	for i := range w {
		w[i] = make([][]float32, 3)
		for j := range w[i] {
			w[i][j] = make([]float32, 3)
			for k := range w[i][j] {
				w[i][j][k] = float32(i*9+j*3+k)*0.5 - 2
			}
		}
	}
	loss := tfgo.Sum(s, tfgo.Mul(s, out, tfgo.Const(s, w)), tfgo.Const(s, []int32{0, 1, 2}))
	var handles []tfgo.Output
	for _, sh := range v.Shards() {
		handles = append(handles, sh.Handle())
	}
	grads := tfgo.Gradients(s, []tfgo.Output{loss}, handles, nil)
	init := v.Initializer(s)
	sess := newSession(t, s)
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	got := fetchFloats(t, sess, append([]tfgo.Output{out}, grads...)...)
	assert.Equal(t, pyFloats(t, ref, "lookup"), got[0])
	for i := range grads {
		assert.Equal(t, pyFloats(t, ref, fmt.Sprintf("grad%d", i)), got[1+i], "shard %d", i)
	}

	// The strategy's checkpoint restores into 2 and 4 shards.
	prefix := pyStrings(t, ref, "prefix")[0]
	const key = "emb/.ATTRIBUTES/VARIABLE_VALUE"
	for _, n := range []int{2, 4} {
		s := tfgo.NewScope()
		v, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{10, 3}, tfgo.Zeros(), FixedShardsPartitioner(n), cpuDevices)
		require.NoError(t, err)
		sv, err := NewShardedSaver(s, []*ShardedVariable{v}, ShardedSaverOptions{Keys: []string{key}})
		require.NoError(t, err)
		val := v.Value(s)
		init := v.Initializer(s)
		sess := newSession(t, s)
		_, err = sess.Run(nil, nil, init)
		require.NoError(t, err)
		require.NoError(t, sv.Restore(sess, prefix))
		assert.Equal(t, flat(table(10, 3)), fetchFloats(t, sess, val)[0], "%d shards", n)
	}

	// The same three shards saved from Go: the slices Python wrote.
	sess2, sv2 := threeShardSession(t, ShardedSaverOptions{Keys: []string{key}})
	goPrefix := filepath.Join(dir, "go")
	require.NoError(t, sv2.Save(sess2, goPrefix))
	pyEntry := entry(t, prefix, key)
	goEntry := entry(t, goPrefix, key)
	// The order of a key's slices is the order the save's parts were
	// merged in (Python saves per device): not part of the layout.
	byStart := func(sl [][]savedmodel.Extent) [][]savedmodel.Extent {
		out := append([][]savedmodel.Extent(nil), sl...)
		sort.Slice(out, func(i, j int) bool { return out[i][0].Start < out[j][0].Start })
		return out
	}
	assert.Equal(t, byStart(pyEntry.Slices), byStart(goEntry.Slices))
	assert.Len(t, goEntry.Slices, 3)
	assert.Equal(t, pyEntry.Shape, goEntry.Shape)
	assert.Equal(t, pyEntry.DType, goEntry.DType)
	pyKeys := bundleKeys(t, prefix)
	for _, k := range bundleKeys(t, goPrefix) {
		assert.Contains(t, pyKeys, k, "the slice keys are Python's")
	}
}

func pyList(shape []int64) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func bundleKeys(t *testing.T, prefix string) []string {
	t.Helper()
	r, err := savedmodel.OpenBundle(prefix)
	require.NoError(t, err)
	defer r.Close()
	return r.Keys()
}

func entry(t *testing.T, prefix, key string) *savedmodel.Entry {
	t.Helper()
	r, err := savedmodel.OpenBundle(prefix)
	require.NoError(t, err)
	defer r.Close()
	e, err := r.Entry(key)
	require.NoError(t, err)
	return e
}

// threeShardSession has "emb" [10, 3] (the test table) in three shards on
// three devices, initialized, and a saver for it.
func threeShardSession(t *testing.T, opts ShardedSaverOptions) (*tfgo.Session, *ShardedSaver) {
	t.Helper()
	s := tfgo.NewScope()
	v, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{10, 3}, tfgo.InitialValue(table(10, 3)), FixedShardsPartitioner(3), cpuDevices)
	require.NoError(t, err)
	sv, err := NewShardedSaver(s, []*ShardedVariable{v}, opts)
	require.NoError(t, err)
	init := v.Initializer(s)
	var plain []*tfgo.Operation
	for _, p := range opts.Variables {
		plain = append(plain, p.Initializer())
	}
	sess := newSession(t, s)
	_, err = sess.Run(nil, nil, append(plain, init)...)
	require.NoError(t, err)
	return sess, sv
}

// Lookup equals a gather from one unsharded variable holding the same
// table, for int32 and int64 ids of several shapes and shard counts, and
// each shard's gradient is its rows of the whole table's gradient.
func TestLookupEqualsGatherOnTheFullTable(t *testing.T) {
	const rows, cols = 11, 4
	for _, n := range []int{1, 2, 3, 4, 11} {
		for _, ids := range []any{
			[]int32{10, 0, 5, 5, 2},
			[][]int64{{0, 1, 2}, {8, 9, 10}, {3, 3, 3}},
			int64(7),
			[]int64{},
		} {
			name := fmt.Sprintf("%d shards, ids %v", n, ids)
			s := tfgo.NewScope()
			v, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{rows, cols}, tfgo.InitialValue(table(rows, cols)), FixedShardsPartitioner(n), cpuDevices)
			require.NoError(t, err, name)
			full := tfgo.NewVariable(s, "full", tfgo.Float, []int64{rows, cols}, tfgo.InitialValue(table(rows, cols)))
			idT := tfgo.Const(s, ids)
			got := v.Lookup(s, idT)
			want := tfgo.ResourceGather(s, full.Handle(), idT, tfgo.Float)
			// A weight per element, so every row's gradient differs.
			wshape := tfgo.ShapeOf(s, want)
			weight := tfgo.AddV2(s, tfgo.Cast(s, tfgo.Reshape(s, tfgo.Range(s, tfgo.Const(s, int32(0)), tfgo.Size(s, want), tfgo.Const(s, int32(1))), wshape), tfgo.Float), tfgo.Const(s, float32(1)))
			lossOf := func(x tfgo.Output) tfgo.Output {
				sq := tfgo.Mul(s, tfgo.Mul(s, x, x), weight)
				return tfgo.Sum(s, tfgo.Reshape(s, sq, tfgo.Const(s, []int32{-1})), tfgo.Const(s, int32(0)))
			}
			var handles []tfgo.Output
			for _, sh := range v.Shards() {
				handles = append(handles, sh.Handle())
			}
			gShards := tfgo.Gradients(s, []tfgo.Output{lossOf(got)}, handles, nil)
			gFull := tfgo.Gradients(s, []tfgo.Output{lossOf(want)}, []tfgo.Output{full.Handle()}, nil)
			init := v.Initializer(s)
			sess := newSession(t, s)
			_, err = sess.Run(nil, nil, init, full.Initializer())
			require.NoError(t, err, name)
			res, err := sess.Run(nil, []tfgo.Output{got, want})
			require.NoError(t, err, name)
			assert.Equal(t, res[1].Shape(), res[0].Shape(), name)
			a, _ := tfgo.Float32s(res[0])
			b, _ := tfgo.Float32s(res[1])
			assert.Equal(t, b, a, name)
			vals := fetchFloats(t, sess, append(gShards, gFull...)...)
			offs := v.Offsets()
			for i := 0; i < len(handles); i++ {
				assert.Equal(t, vals[len(handles)][offs[i]*cols:offs[i+1]*cols], vals[i], "%s: shard %d", name, i)
			}
		}
	}
}

// Each shard's variable ops and its gather run on the shard's device.
func TestShardOpsOnTheirDevices(t *testing.T) {
	s := tfgo.NewScope()
	v, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{9, 2}, tfgo.GlorotUniform(3), FixedShardsPartitioner(5), cpuDevices)
	require.NoError(t, err)
	out := v.Lookup(s, tfgo.Const(s, []int32{1, 8}))
	require.NoError(t, s.Err())
	assert.Equal(t, []string{"/device:CPU:0", "/device:CPU:1", "/device:CPU:2", "/device:CPU:0", "/device:CPU:1"}, v.Devices())
	g, err := s.Finalize()
	require.NoError(t, err)
	seen := map[string]int{}
	for _, op := range g.Operations() {
		name := op.Name()
		for i := 0; i < 5; i++ {
			if strings.HasPrefix(name, fmt.Sprintf("emb/part_%d/", i)) || name == fmt.Sprintf("emb/part_%d", i) {
				assert.Equal(t, cpuDevices[i%3], op.Device(), name)
				seen["var"]++
			}
		}
		if op.Type() == "ResourceGather" {
			var h *tfgo.Operation = op.Input(0).Op
			assert.Equal(t, h.Device(), op.Device(), "%s gathers %s", name, h.Name())
			seen["gather"]++
		}
	}
	assert.Equal(t, 5, seen["gather"])
	assert.GreaterOrEqual(t, seen["var"], 5*3)
	init := v.Initializer(s)
	sess := newSession(t, s)
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	fetchFloats(t, sess, out)
}

// The shards' concatenation holds what one variable with the same
// initializer holds (the full value is computed once, then sliced).
func TestShardsInitializeLikeOneVariable(t *testing.T) {
	s := tfgo.NewScope()
	v, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{13, 5}, tfgo.GlorotUniform(42), MaxSizePartitioner(40, 0), cpuDevices)
	require.NoError(t, err)
	assert.Len(t, v.Shards(), 7)
	one := tfgo.NewVariable(s, "one", tfgo.Float, []int64{13, 5}, tfgo.GlorotUniform(42))
	val := v.Value(s)
	init := v.Initializer(s)
	sess := newSession(t, s)
	_, err = sess.Run(nil, nil, init, one.Initializer())
	require.NoError(t, err)
	got := fetchFloats(t, sess, val, one.Value())
	assert.Equal(t, got[1], got[0])
}

// Go's checkpoint is read by Python whole under the variable's name, and
// restored by Python's Saver into two tf.compat.v1 partitions; a Python
// tf.compat.v1 partitioned variable's checkpoint restores in Go into four
// shards. Saving again (the two-data-shard form) keeps it readable.
func TestCheckpointsInterchangeWithPython(t *testing.T) {
	dir := t.TempDir()
	bias := func(s *tfgo.Scope) *tfgo.Variable {
		return tfgo.NewVariable(s, "bias", tfgo.Float, []int64{3}, tfgo.InitialValue([]float32{1, 2, 3}))
	}
	s := tfgo.NewScope()
	v, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{10, 3}, tfgo.InitialValue(table(10, 3)), FixedShardsPartitioner(3), cpuDevices)
	require.NoError(t, err)
	b := bias(s)
	sv, err := NewShardedSaver(s, []*ShardedVariable{v}, ShardedSaverOptions{Variables: []*tfgo.Variable{b}})
	require.NoError(t, err)
	init := v.Initializer(s)
	sess := newSession(t, s)
	_, err = sess.Run(nil, nil, init, b.Initializer())
	require.NoError(t, err)
	goPrefix := filepath.Join(dir, "go")
	require.NoError(t, sv.Save(sess, goPrefix))
	require.NoError(t, sv.Save(sess, goPrefix)) // the other data-shard count
	e := entry(t, goPrefix, "emb")
	assert.Equal(t, [][]savedmodel.Extent{
		{{Start: 0, Length: 4}, {Start: 0, Length: 3}},
		{{Start: 4, Length: 3}, {Start: 0, Length: 3}},
		{{Start: 7, Length: 3}, {Start: 0, Length: 3}},
	}, e.Slices)
	// Go's own reader assembles it too.
	r, err := savedmodel.OpenBundle(goPrefix)
	require.NoError(t, err)
	whole, err := r.Read("emb")
	require.NoError(t, err)
	r.Close()
	assert.Len(t, whole.Data, 30*4)

	pyPrefix := filepath.Join(dir, "py")
	ref := interop.Python(t, pyTable+fmt.Sprintf(`
r = tf.train.load_checkpoint(%q)
outputs['keys'] = np.array(sorted(n.encode() for n, _ in tf.train.list_variables(%q)), dtype=object)
outputs['emb'] = r.get_tensor('emb')
outputs['bias'] = r.get_tensor('bias')
g = tf.Graph()
with g.as_default():
    x = tf.compat.v1.get_variable('emb', shape=[10, 3], partitioner=tf.compat.v1.fixed_size_partitioner(2))
    bias = tf.compat.v1.get_variable('bias', shape=[3])
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, %q)
        outputs['restored'] = np.concatenate([sess.run(p) for p in x])
g = tf.Graph()
with g.as_default():
    x = tf.compat.v1.get_variable('emb', shape=[10, 3], initializer=tf.compat.v1.zeros_initializer(), partitioner=tf.compat.v1.fixed_size_partitioner(3))
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(x.assign(table(10, 3) * 2))
        tf.compat.v1.train.Saver().save(sess, %q)
`, goPrefix, goPrefix, goPrefix, pyPrefix), nil)
	assert.Equal(t, []string{"bias", "emb"}, pyStrings(t, ref, "keys"))
	assert.Equal(t, flat(table(10, 3)), pyFloats(t, ref, "emb"))
	assert.Equal(t, []float32{1, 2, 3}, pyFloats(t, ref, "bias"))
	assert.Equal(t, flat(table(10, 3)), pyFloats(t, ref, "restored"))

	// Python's partitioned variable (three parts) into four Go shards.
	s = tfgo.NewScope()
	v4, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{10, 3}, tfgo.Zeros(), FixedShardsPartitioner(4), cpuDevices)
	require.NoError(t, err)
	sv4, err := NewShardedSaver(s, []*ShardedVariable{v4}, ShardedSaverOptions{})
	require.NoError(t, err)
	val := v4.Value(s)
	init = v4.Initializer(s)
	sess = newSession(t, s)
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	require.NoError(t, sv4.Restore(sess, pyPrefix))
	want := flat(table(10, 3))
	for i := range want {
		want[i] *= 2
	}
	assert.Equal(t, want, fetchFloats(t, sess, val)[0])
}

// A checkpoint saved with 3 shards restores into 1, 2, 4 and 10 shards
// with equal values, and so does one of an unsharded variable (a whole
// tensor, tfgo.Saver); a single-shard variable (one entry: the pure-Go
// writer's two-data-shard path) round-trips twice.
func TestCheckpointReshards(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ckpt")
	sess, sv := threeShardSession(t, ShardedSaverOptions{})
	require.NoError(t, sv.Save(sess, prefix))

	wholePrefix := filepath.Join(dir, "whole")
	ws := tfgo.NewScope()
	wv := tfgo.NewVariable(ws, "emb", tfgo.Float, []int64{10, 3}, tfgo.InitialValue(table(10, 3)))
	saver := tfgo.NewSaver(ws, nil)
	wsess := newSession(t, ws)
	_, err := wsess.Run(nil, nil, wv.Initializer())
	require.NoError(t, err)
	require.NoError(t, saver.Save(wsess, wholePrefix))
	assert.Nil(t, entry(t, wholePrefix, "emb").Slices, "stored whole")

	for _, n := range []int{1, 2, 4, 10} {
		s := tfgo.NewScope()
		v, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{10, 3}, tfgo.Ones(), FixedShardsPartitioner(n), cpuDevices)
		require.NoError(t, err)
		require.Len(t, v.Shards(), n)
		sv, err := NewShardedSaver(s, []*ShardedVariable{v}, ShardedSaverOptions{})
		require.NoError(t, err)
		val := v.Value(s)
		init := v.Initializer(s)
		sess := newSession(t, s)
		_, err = sess.Run(nil, nil, init)
		require.NoError(t, err)
		require.NoError(t, sv.Restore(sess, prefix), "%d shards", n)
		assert.Equal(t, flat(table(10, 3)), fetchFloats(t, sess, val)[0], "%d shards", n)
		_, err = sess.Run(nil, nil, init) // back to ones
		require.NoError(t, err)
		require.NoError(t, sv.Restore(sess, wholePrefix), "%d shards from a whole tensor", n)
		assert.Equal(t, flat(table(10, 3)), fetchFloats(t, sess, val)[0], "%d shards from a whole tensor", n)

		if n == 1 {
			single := filepath.Join(dir, "single")
			for range 2 {
				require.NoError(t, sv.Save(sess, single))
				r, err := savedmodel.OpenBundle(single)
				require.NoError(t, err)
				whole, err := r.Read("emb")
				require.NoError(t, err)
				r.Close()
				assert.Equal(t, []int64{10, 3}, whole.Shape)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	// Two rows in three fixed shards: an error naming the variable (Python
	// caps the count at two); a partitioner of one's own asking for more
	// shards than rows is capped, as ParameterServerStrategy caps it.
	s := tfgo.NewScope()
	_, err := NewShardedVariable(s, "small", tfgo.Float, []int64{2, 4}, tfgo.Zeros(), FixedShardsPartitioner(3), nil)
	assert.ErrorContains(t, err, `sharded variable "small" of shape [2 4]: FixedShardsPartitioner(3): axis 0 has 2 rows, fewer than the 3 shards`)
	v, err := NewShardedVariable(s, "capped", tfgo.Float, []int64{2, 4}, tfgo.Zeros(), func([]int64, tfgo.DataType) (int, error) { return 3, nil }, nil)
	require.NoError(t, err)
	assert.Len(t, v.Shards(), 2)
	assert.Equal(t, []string{"", ""}, v.Devices())

	_, err = NewShardedVariable(nil, "emb", tfgo.Float, []int64{4, 2}, tfgo.Zeros(), nil, nil)
	assert.ErrorContains(t, err, `"emb"`)
	assert.ErrorIs(t, err, tfgo.ErrInvalidScope)
	_, err = NewShardedVariable(&tfgo.Scope{}, "emb", tfgo.Float, []int64{4, 2}, tfgo.Zeros(), nil, nil)
	assert.ErrorIs(t, err, tfgo.ErrInvalidScope)
	for _, c := range []struct {
		shape []int64
		init  tfgo.Initializer
		p     Partitioner
		devs  []string
		want  string
	}{
		{[]int64{}, tfgo.Zeros(), nil, nil, "scalar"},
		{[]int64{0, 3}, tfgo.Zeros(), nil, nil, "no rows"},
		{[]int64{-1, 3}, tfgo.Zeros(), nil, nil, "not fully defined"},
		{[]int64{4, 3}, nil, nil, nil, "nil initializer"},
		{[]int64{4, 3}, tfgo.Zeros(), FixedShardsPartitioner(0), nil, "num_shards must be positive"},
		{[]int64{4, 3}, tfgo.Zeros(), func([]int64, tfgo.DataType) (int, error) { return 0, nil }, nil, "gave 0 shards"},
		{[]int64{4, 3}, tfgo.Zeros(), nil, []string{""}, "device 0 is empty"},
		{[]int64{4, 3}, tfgo.InitialValue([]float32{1, 2}), FixedShardsPartitioner(2), nil, "emb"},
	} {
		_, err := NewShardedVariable(tfgo.NewScope(), "emb", tfgo.Float, c.shape, c.init, c.p, c.devs)
		require.Error(t, err, c.want)
		assert.Contains(t, err.Error(), c.want)
		assert.Contains(t, err.Error(), "emb")
	}

	// Ids of another dtype stick to the scope; nil variables build nothing.
	s = tfgo.NewScope()
	v, err = NewShardedVariable(s, "emb", tfgo.Float, []int64{4, 2}, tfgo.Zeros(), FixedShardsPartitioner(2), nil)
	require.NoError(t, err)
	assert.Nil(t, v.Lookup(s, tfgo.Const(s, []float32{1})).Op)
	assert.ErrorContains(t, s.Err(), "ids are float")
	var nilVar *ShardedVariable
	assert.Nil(t, nilVar.Shards())
	assert.Equal(t, "", nilVar.Name())
	assert.Nil(t, nilVar.Value(tfgo.NewScope()).Op)
	assert.Nil(t, nilVar.Initializer(tfgo.NewScope()))
	s2 := tfgo.NewScope()
	assert.Nil(t, nilVar.Lookup(s2, tfgo.Const(s2, []int32{1})).Op)
	assert.Error(t, s2.Err())
	assert.Nil(t, v.Lookup(nil, tfgo.Output{}).Op)
	var zeroVar ShardedVariable
	s3 := tfgo.NewScope()
	assert.Nil(t, zeroVar.Lookup(s3, tfgo.Const(s3, []int32{1})).Op)
	assert.ErrorContains(t, s3.Err(), "zero ShardedVariable")
	assert.Nil(t, zeroVar.Value(tfgo.NewScope()).Op)

	// An unknown device fails when the graph runs, naming it.
	s = tfgo.NewScope()
	v, err = NewShardedVariable(s, "emb", tfgo.Float, []int64{4, 2}, tfgo.Zeros(), FixedShardsPartitioner(2), []string{"/device:CPU:0", "/device:CPU:7"})
	require.NoError(t, err)
	init := v.Initializer(s)
	sess := newSession(t, s)
	_, err = sess.Run(nil, nil, init)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CPU:7")

	// Savers: nil, a restore of another shape or a missing key changes
	// nothing and names the key.
	var nilSaver *ShardedSaver
	assert.ErrorContains(t, nilSaver.Save(nil, "x"), "nil or zero ShardedSaver")
	assert.ErrorContains(t, nilSaver.Restore(nil, "x"), "nil or zero ShardedSaver")
	var zeroSaver ShardedSaver
	assert.ErrorContains(t, zeroSaver.Save(sess, "x"), "zero ShardedSaver")
	assert.ErrorContains(t, zeroSaver.Restore(sess, "x"), "zero ShardedSaver")
	_, err = NewShardedSaver(tfgo.NewScope(), nil, ShardedSaverOptions{})
	assert.ErrorContains(t, err, "no variables")
	_, err = NewShardedSaver(nil, nil, ShardedSaverOptions{})
	assert.ErrorIs(t, err, tfgo.ErrInvalidScope)
	_, err = NewShardedSaver(tfgo.NewScope(), []*ShardedVariable{nil}, ShardedSaverOptions{})
	assert.ErrorContains(t, err, "nil")
	_, err = NewShardedSaver(tfgo.NewScope(), []*ShardedVariable{v}, ShardedSaverOptions{Keys: []string{"a", "b"}})
	assert.ErrorContains(t, err, "2 keys for 1")

	dir := t.TempDir()
	prefix := filepath.Join(dir, "ckpt")
	sess3, sv3 := threeShardSession(t, ShardedSaverOptions{})
	require.NoError(t, sv3.Save(sess3, prefix))
	s = tfgo.NewScope()
	other, err := NewShardedVariable(s, "emb", tfgo.Float, []int64{12, 3}, tfgo.Zeros(), FixedShardsPartitioner(2), cpuDevices)
	require.NoError(t, err)
	osv, err := NewShardedSaver(s, []*ShardedVariable{other}, ShardedSaverOptions{})
	require.NoError(t, err)
	renamed, err := NewShardedSaver(s, []*ShardedVariable{other}, ShardedSaverOptions{Keys: []string{"table"}})
	require.NoError(t, err)
	osess := newSession(t, s)
	err = osv.Restore(osess, prefix)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"emb"`)
	assert.Contains(t, err.Error(), "[10 3]")
	assert.Contains(t, err.Error(), "[12 3]")
	err = renamed.Restore(osess, prefix)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "table")
}

// The gradient of DynamicPartition (a partition the loss does not use
// gets zeros) and of DynamicStitch equal TensorFlow's.
func TestPartitionAndStitchGradientsMatchTensorFlow(t *testing.T) {
	s := tfgo.NewScope()
	xv := [][]float32{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}}
	x := tfgo.Const(s, xv)
	parts := tfgo.Const(s, []int32{2, 0, 2, 1, 0})
	p := tfgo.DynamicPartition(s, x, parts, 3)
	require.Len(t, p, 3)
	c0 := tfgo.Const(s, [][]float32{{1, -1}, {2, -2}})
	c2 := tfgo.Const(s, [][]float32{{0.5, 3}, {-4, 1}})
	all := []int32{0, 1}
	lossP := tfgo.AddV2(s, tfgo.Sum(s, tfgo.Mul(s, p[0], c0), tfgo.Const(s, all)), tfgo.Sum(s, tfgo.Mul(s, tfgo.Mul(s, p[2], p[2]), c2), tfgo.Const(s, all)))
	gx := tfgo.Gradients(s, []tfgo.Output{lossP}, []tfgo.Output{x}, nil)
	a := tfgo.Const(s, [][]float32{{1, 2}, {3, 4}})
	bb := tfgo.Const(s, [][]float32{{5, 6}, {7, 8}, {9, 10}})
	st := tfgo.DynamicStitch(s, []tfgo.Output{tfgo.Const(s, []int32{4, 0}), tfgo.Const(s, []int32{1, 3, 2})}, []tfgo.Output{a, bb})
	w := tfgo.Const(s, [][]float32{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}})
	lossS := tfgo.Sum(s, tfgo.Mul(s, tfgo.Mul(s, st, st), w), tfgo.Const(s, all))
	gs := tfgo.Gradients(s, []tfgo.Output{lossS}, []tfgo.Output{a, bb}, nil)
	sess := newSession(t, s)
	got := fetchFloats(t, sess, gx[0], gs[0], gs[1])

	ref := interop.Python(t, `
x = tf.constant([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]], tf.float32)
a = tf.constant([[1, 2], [3, 4]], tf.float32)
b = tf.constant([[5, 6], [7, 8], [9, 10]], tf.float32)
with tf.GradientTape(persistent=True) as tape:
    tape.watch([x, a, b])
    p = tf.dynamic_partition(x, [2, 0, 2, 1, 0], 3)
    lp = tf.reduce_sum(p[0] * [[1, -1], [2, -2]]) + tf.reduce_sum(p[2] * p[2] * [[0.5, 3], [-4, 1]])
    st = tf.dynamic_stitch([[4, 0], [1, 3, 2]], [a, b])
    ls = tf.reduce_sum(st * st * x)
outputs['gx'] = tape.gradient(lp, x).numpy()
outputs['ga'] = tf.convert_to_tensor(tape.gradient(ls, a)).numpy()
outputs['gb'] = tf.convert_to_tensor(tape.gradient(ls, b)).numpy()
`, nil)
	assert.Equal(t, pyFloats(t, ref, "gx"), got[0])
	assert.Equal(t, pyFloats(t, ref, "ga"), got[1])
	assert.Equal(t, pyFloats(t, ref, "gb"), got[2])
}
