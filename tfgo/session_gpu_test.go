package tfgo

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// gpuOptions sets every GPU field.
var gpuOptions = SessionOptions{
	VisibleDevices:     "1,0",
	AllowGrowth:        true,
	MemoryFraction:     0.4,
	VirtualGPUMemoryMB: [][]float32{{1024, 2048.5}, {}},
}

// The GPU fields land in ConfigProto.gpu_options; a starting Config keeps
// its other settings and is not changed.
func TestSessionGPUOptionsConfigProto(t *testing.T) {
	c := gpuOptions.configProto()
	g := c.GetGpuOptions()
	require.NotNil(t, g)
	assert.Equal(t, "1,0", g.GetVisibleDeviceList())
	assert.True(t, g.GetAllowGrowth())
	assert.Equal(t, 0.4, g.GetPerProcessGpuMemoryFraction())
	vd := g.GetExperimental().GetVirtualDevices()
	require.Len(t, vd, 2)
	assert.Equal(t, []float32{1024, 2048.5}, vd[0].GetMemoryLimitMb())
	assert.Empty(t, vd[1].GetMemoryLimitMb())

	assert.Nil(t, SessionOptions{}.configProto().GetGpuOptions(), "no GPU field set: no gpu_options")

	start := &cpb.ConfigProto{AllowSoftPlacement: true, GpuOptions: &cpb.GPUOptions{AllocatorType: "BFC", AllowGrowth: false}}
	before := proto.Clone(start)
	o := gpuOptions
	o.Config = start
	c = o.configProto()
	assert.True(t, proto.Equal(before, start), "the caller's Config was changed")
	assert.True(t, c.GetAllowSoftPlacement())
	assert.Equal(t, "BFC", c.GetGpuOptions().GetAllocatorType())
	assert.True(t, c.GetGpuOptions().GetAllowGrowth())
	assert.Equal(t, "1,0", c.GetGpuOptions().GetVisibleDeviceList())
}

// Without a GPU the options are accepted and change nothing: the session
// opens and runs on the CPU.
func TestSessionGPUOptionsOnCPU(t *testing.T) {
	s := NewScope()
	y := Mul(s, Const(s, []float32{1, 2}), Const(s.SubScope("b"), []float32{3, 4}))
	sess, err := NewSession(s, gpuOptions)
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Run(nil, []Output{y})
	require.NoError(t, err)
	v, err := Float32s(out[0])
	require.NoError(t, err)
	assert.Equal(t, []float32{3, 8}, v)
	devs, err := sess.ListDevices()
	require.NoError(t, err)
	for _, d := range devs {
		assert.NotEqual(t, "GPU", d.Type, d.Name)
	}
}

// Values TensorFlow would refuse are errors from NewSession (and
// LoadSavedModel) naming the field, whatever the machine.
func TestSessionGPUOptionsRefused(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		o    SessionOptions
		want string
	}{
		{SessionOptions{MemoryFraction: 1.5}, "SessionOptions.MemoryFraction must be in [0, 1], got 1.5"},
		{SessionOptions{MemoryFraction: -0.1}, "SessionOptions.MemoryFraction must be in [0, 1], got -0.1"},
		{SessionOptions{MemoryFraction: math.NaN()}, "SessionOptions.MemoryFraction must be in [0, 1], got NaN"},
		{SessionOptions{VisibleDevices: "0,x"}, `SessionOptions.VisibleDevices must be a comma-separated list of GPU indices like "0,1", got "0,x"`},
		{SessionOptions{VisibleDevices: "-1"}, `SessionOptions.VisibleDevices must be a comma-separated list`},
		{SessionOptions{VisibleDevices: "0,"}, `SessionOptions.VisibleDevices must be a comma-separated list`},
		{SessionOptions{VisibleDevices: "1,1"}, `SessionOptions.VisibleDevices "1,1" lists GPU 1 twice`},
		{SessionOptions{VirtualGPUMemoryMB: [][]float32{{1024}, {512, -1}}}, "SessionOptions.VirtualGPUMemoryMB[1][1] must be a non-negative number of MB, got -1"},
		{SessionOptions{VirtualGPUMemoryMB: [][]float32{{nan}}}, "SessionOptions.VirtualGPUMemoryMB[0][0] must be a non-negative number of MB, got NaN"},
		{SessionOptions{VirtualGPUMemoryMB: [][]float32{{float32(math.Inf(1))}}}, "VirtualGPUMemoryMB[0][0] must be a non-negative number of MB, got +Inf"},
		{SessionOptions{VisibleDevices: "0,1", VirtualGPUMemoryMB: [][]float32{{1024}}}, `SessionOptions.VirtualGPUMemoryMB has 1 entries for the 2 GPUs of VisibleDevices "0,1"`},
	} {
		s := NewScope()
		Const(s, float32(1))
		sess, err := NewSession(s, c.o)
		assert.Nil(t, sess)
		assert.ErrorContains(t, err, c.want)
		_, _, err = LoadSavedModel(t.TempDir(), []string{"serve"}, c.o)
		assert.ErrorContains(t, err, c.want)
	}
	// Spaces around the indices are TensorFlow's to ignore too.
	assert.NoError(t, SessionOptions{VisibleDevices: "0, 1"}.check())
	assert.Equal(t, "0,1", SessionOptions{VisibleDevices: "0, 1"}.configProto().GetGpuOptions().GetVisibleDeviceList())
}

// Python's ConfigProto reads the serialized proto with the same values.
func TestSessionGPUOptionsReadByPython(t *testing.T) {
	b, err := proto.Marshal(gpuOptions.configProto())
	require.NoError(t, err)
	in, err := NewTensor(string(b))
	require.NoError(t, err)
	ref := python(t, `
c = tf.compat.v1.ConfigProto()
c.ParseFromString(inputs["c"].item())
g = c.gpu_options
outputs["visible"] = np.array([int(i) for i in g.visible_device_list.split(",")], dtype=np.int64)
outputs["growth"] = np.int64(g.allow_growth)
outputs["fraction"] = np.float64(g.per_process_gpu_memory_fraction)
outputs["limits"] = np.array([len(v.memory_limit_mb) for v in g.experimental.virtual_devices], dtype=np.int64)
outputs["limits0"] = np.array(g.experimental.virtual_devices[0].memory_limit_mb, dtype=np.float32)
`, map[string]*Tensor{"c": in})
	ints := func(k string) []int64 {
		v, err := Int64s(ref[k])
		require.NoError(t, err, k)
		return v
	}
	assert.Equal(t, []int64{1, 0}, ints("visible"))
	assert.Equal(t, []int64{1}, ints("growth"))
	assert.Equal(t, []int64{2, 0}, ints("limits"))
	fraction, err := Float64s(ref["fraction"])
	require.NoError(t, err)
	assert.Equal(t, []float64{0.4}, fraction)
	limits, err := Float32s(ref["limits0"])
	require.NoError(t, err)
	assert.Equal(t, []float32{1024, 2048.5}, limits)
}
