package tfgo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A graph whose ops all have CPU kernels for their dtypes passes; an op
// whose CPU kernels lack its dtype (Cholesky has no float16 kernel, Digamma
// no bfloat16 one in TensorFlow's kernel registry) is named with the
// attribute and what the kernels take, before any run; and the runtime
// agrees: running the graph fails for want of that kernel.
func TestCheckKernels(t *testing.T) {
	s := NewScope()
	x := Cast(s, Const(s, [][]float32{{4, 2}, {2, 3}}), Half)
	y := MatMul(s, x, x)
	require.NoError(t, s.Err())
	require.NoError(t, CheckKernels(s.Graph()))
	c := Cholesky(s.SubScope("factor"), y)
	require.NoError(t, s.Err())
	err := CheckKernels(s.Graph(), "CPU")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `op "factor/Cholesky" (Cholesky) has no CPU kernel for T=float16 (kernels: `)
	assert.Contains(t, err.Error(), "float32")
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	// The runtime places the whole graph on the first run: even a run of
	// the MatMul alone fails, with a longer message.
	_, err = sess.Run(nil, []Output{y})
	assert.ErrorContains(t, err, "No OpKernel was registered to support Op 'Cholesky'")
	_, err = sess.Run(nil, []Output{c})
	assert.ErrorContains(t, err, "OpKernel")

	s = NewScope()
	Digamma(s, Placeholder(s, BFloat16, 3))
	assert.ErrorContains(t, CheckKernels(s.Graph()), "T=bfloat16")
	assert.NoError(t, CheckKernels(nil))
}
