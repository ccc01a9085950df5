package cgo

import (
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No runtime op has list(bool) or list(tensor) attrs, but TensorFlow accepts
// any attr whose name starts with "_" on any op, so a NoOp carries them all.
func TestEveryAttrKindRoundTrips(t *testing.T) {
	g := NewGraph()
	defer g.Close()
	t1, err := NewTensor(dtypes.Float, []int64{2}, f32bytes(1.5, -2))
	require.NoError(t, err)
	t2, err := NewStringTensor([]int64{1}, [][]byte{[]byte("tensor attr")})
	require.NoError(t, err)
	want := map[string]any{
		"_string_val":      "hello",
		"_string_list_val": []string{"a", "", "ccc"},
		"_int_val":         int64(-7),
		"_int_list_val":    []int64{1, 2, 3},
		"_float_val":       float32(0.25),
		"_float_list_val":  []float32{0.5, -1},
		"_bool_val":        true,
		"_bool_list_val":   []bool{true, false, true},
		"_type_val":        dtypes.BFloat16,
		"_type_list_val":   []DataType{dtypes.Half, dtypes.String, dtypes.Int8},
		"_shape_val":       MakeShape(-1, 3),
		"_shape_list_val":  []Shape{UnknownShape(), MakeShape(), MakeShape(2, -1, 4)},
	}
	b := g.NewOperation("NoOp", "all_kinds")
	for k, v := range want {
		b.SetAttr(k, v)
	}
	b.SetAttr("_tensor_val", t1).SetAttr("_tensor_list_val", []*Tensor{t1, t2})
	op, err := b.Finish()
	require.NoError(t, err)

	for k, v := range want {
		got, err := op.Attr(k)
		require.NoError(t, err, k)
		assert.Equal(t, v, got, k)
	}
	tv, err := op.Attr("_tensor_val")
	require.NoError(t, err)
	assert.Equal(t, []float32{1.5, -2}, bytesf32(tv.(*Tensor).Data()))
	tl, err := op.Attr("_tensor_list_val")
	require.NoError(t, err)
	require.Len(t, tl, 2)
	s, err := tl.([]*Tensor)[1].Strings()
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("tensor attr")}, s)
	assert.ElementsMatch(t, append([]string{"_tensor_val", "_tensor_list_val"}, keys(want)...), op.AttrNames())

	_, err = op.Attr("no_such_attr")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "all_kinds")
}

func TestFuncAttrOfACall(t *testing.T) {
	g := NewGraph()
	defer g.Close()
	call, err := g.NewOperation("PartitionedCall", "call").AddInputList(nil).
		SetAttr("Tin", []DataType{}).SetAttr("Tout", []DataType{dtypes.Float}).SetAttr("f", Func{Name: "my_fn"}).Finish()
	require.NoError(t, err)
	f, err := call.Attr("f")
	require.NoError(t, err)
	assert.Equal(t, Func{Name: "my_fn"}, f)
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
