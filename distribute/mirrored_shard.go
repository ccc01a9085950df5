package distribute

import (
	"fmt"

	"github.com/gotf/gotf/tfgo"
)

// MirroredOptions are NewMirroredStrategyWithOptions' options; the zero
// value is NewMirroredStrategy's strategy.
type MirroredOptions struct {
	// ShardOptimizerState partitions the optimizer's state over the
	// replicas (ZeRO stage 1): replica k keeps the slots (SGD's momentum,
	// Adam's m and v) of part k of every trainable weight only, updates
	// that part from its part of the mean gradient, and the updated parts
	// are all-gathered so that every replica's copy of the weight holds the
	// whole update. Each weight is flattened and split into R contiguous
	// parts of ceil(size/R) elements (the last padded with zeros, which
	// stay zero and are dropped after the gather), so a device holds 1/R
	// of the slots. keraslike's Compile builds the step (one session run,
	// as without the option; the weights end as the unsharded step's), and
	// refuses the option with an optimizer whose state it cannot shard;
	// SaveCheckpoint saves such a model's weights only. See
	// BatchReduceScatterMean, AllReduceSum and BatchAllGather.
	ShardOptimizerState bool
}

// NewMirroredStrategyWithOptions is NewMirroredStrategy with options.
func NewMirroredStrategyWithOptions(devices []string, o MirroredOptions) (*MirroredStrategy, error) {
	s, err := NewMirroredStrategy(devices...)
	if err != nil {
		return nil, err
	}
	s.opts = o
	return s, nil
}

// Options are the options the strategy was made with (zero for a nil
// strategy).
func (s *MirroredStrategy) Options() MirroredOptions {
	if s == nil {
		return MirroredOptions{}
	}
	return s.opts
}

// ShardLength is the length of each replica's part of a flattened tensor
// of size elements: ceil(size/R), so that R parts cover it with at most
// R-1 elements of padding.
func (s *MirroredStrategy) ShardLength(size int64) int64 {
	n := int64(s.NumReplicas())
	if n == 0 {
		return size
	}
	return (size + n - 1) / n
}

// BatchReduceScatterMean averages several tensors across replicas and
// gives replica k part k of each mean: perReplica[i][k] is replica k's
// 1-D tensor i, of the same length L on every replica, a multiple of the
// number of replicas R; the result's [i][k] is elements [k·L/R, (k+1)·L/R)
// of the mean, on replica k's device. The layout, the handling of missing
// tensors and the launch order are BatchAllReduceMean's.
//
// It is an all-reduce followed by a slice on each device, not
// CollectiveReduceScatterV2: the linked runtime registers that op, but its
// collective registry has no CPU implementation of reduce-scatter (the
// run fails with "CollectiveRegistry::Lookup did not find collective
// implementation"), only NCCL's, which this CPU-only build cannot test.
// The traffic is then an all-reduce's; what the sharding saves is the
// optimizer state and its update work.
func (s *MirroredStrategy) BatchReduceScatterMean(sc *tfgo.Scope, perReplica [][]tfgo.Output) [][]tfgo.Output {
	red := s.BatchAllReduceMean(sc, perReplica)
	if red == nil {
		return nil
	}
	n := len(s.devices)
	for i, vals := range red {
		if vals[0].Op == nil || n == 1 {
			continue
		}
		for k, v := range vals {
			ds := sc.WithDevice(s.devices[k]).SubScope(fmt.Sprintf("scatter_%d", k))
			l := tfgo.Size(ds, v, tfgo.SizeOutType(tfgo.Int32))
			c := tfgo.FloorDiv(ds, l, tfgo.Const(ds, int32(n)))
			begin := tfgo.Mul(ds, c, tfgo.Const(ds, int32(k)))
			red[i][k] = tfgo.Slice(ds, v, tfgo.Reshape(ds, begin, tfgo.Const(ds, []int32{1})), tfgo.Reshape(ds, c, tfgo.Const(ds, []int32{1})))
		}
	}
	if sc.Err() != nil {
		return nil
	}
	return red
}

// AllReduceSum sums values across replicas: values[k] is replica k's
// tensor, and the result's k-th element is the sum, on replica k's
// device; one CollectiveReduceV2 (merge Add, final Id) per device. It is
// how sharded replicas add up the squared sums of their gradient parts
// into the whole gradient's squared norm.
func (s *MirroredStrategy) AllReduceSum(sc *tfgo.Scope, values []tfgo.Output) []tfgo.Output {
	out := s.batchAllReduce(sc, [][]tfgo.Output{values}, "Id")
	if out == nil {
		return nil
	}
	return out[0]
}

// BatchAllGather concatenates several tensors' parts along axis 0 on
// every replica: perReplica[i][k] is replica k's part of tensor i (the
// parts of one tensor have one dtype and shape), and the result's [i][k]
// is the concatenation of parts 0..R-1, on replica k's device. Each tensor
// is one CollectiveGatherV2 per device with its own instance key, chained
// per device in the order given, as BatchAllReduceMean's collectives are.
// A tensor whose every part is the zero Output stays so.
func (s *MirroredStrategy) BatchAllGather(sc *tfgo.Scope, perReplica [][]tfgo.Output) [][]tfgo.Output {
	return s.batchCollective(sc, perReplica, "all_gather", func(ds *tfgo.Scope, v, n, group, inst tfgo.Output) tfgo.Output {
		return tfgo.CollectiveGatherV2(ds, v, n, group, inst, nil, tfgo.CollectiveGatherV2CommunicationHint(s.communicationHint()))
	})
}
