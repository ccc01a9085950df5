package tfgo

import (
	"testing"

	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// A later session's thread-pool sizes are refused, naming the field,
// unless they are the process's; TensorFlow would ignore them silently.
func TestSessionThreadPoolsAreTheProcess(t *testing.T) {
	open := func(o SessionOptions) error {
		s := NewScope()
		_ = Identity(s, Const(s, float32(1)))
		sess, err := NewSession(s, o)
		if err == nil {
			sess.Close()
		}
		return err
	}
	require.NoError(t, open(SessionOptions{}))
	pools.Lock()
	intra, inter := pools.intra, pools.inter
	pools.Unlock()
	if envTrue("TF_OVERRIDE_GLOBAL_THREADPOOL") {
		t.Skip("TF_OVERRIDE_GLOBAL_THREADPOOL: every session has its own intra-op pool")
	}

	require.NoError(t, open(SessionOptions{IntraOpThreads: intra, InterOpThreads: inter}), "the process's own sizes")
	err := open(SessionOptions{IntraOpThreads: intra + 1})
	require.ErrorContains(t, err, "SessionOptions.IntraOpThreads")
	require.ErrorContains(t, err, "first session")
	err = open(SessionOptions{Config: &cpb.ConfigProto{IntraOpParallelismThreads: int32(intra + 1)}})
	require.ErrorContains(t, err, "SessionOptions.Config.intra_op_parallelism_threads")
	err = open(SessionOptions{InterOpThreads: inter + 1})
	require.ErrorContains(t, err, "SessionOptions.InterOpThreads")

	// A session with an inter-op pool of its own may size it.
	require.NoError(t, open(SessionOptions{InterOpThreads: inter + 1, Config: &cpb.ConfigProto{UsePerSessionThreads: true}}))
	require.NoError(t, open(SessionOptions{Config: &cpb.ConfigProto{
		SessionInterOpThreadPool: []*cpb.ThreadPoolOptionProto{{NumThreads: int32(inter + 1)}}}}))
	// Executing in the caller's thread uses no pool.
	require.NoError(t, open(SessionOptions{Config: &cpb.ConfigProto{InterOpParallelismThreads: -1}}))
}
