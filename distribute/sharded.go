package distribute

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

// Partitioner decides into how many shards along axis 0 a variable of
// the given shape and dtype is split, as the partitioners of
// tf.distribute.experimental.partitioners do (they return a list with one
// count per axis, every one 1 but the first; this returns the first).
// NewShardedVariable caps the count at shape[0], as ParameterServerStrategy
// does, so a partitioner of one's own may return more shards than rows.
type Partitioner func(shape []int64, dtype tfgo.DataType) (int, error)

// partitionBytesPerString is the element size the partitioners assume for
// strings: the default bytes_per_string of Python's partitioners.
const partitionBytesPerString = 16

// FixedShardsPartitioner returns Python's
// FixedShardsPartitioner(num_shards): numShards shards. A variable with
// fewer rows than numShards is an error naming both, where Python makes
// shape[0] shards without a word: a count asked for by name that the
// variable cannot have is more likely a mistake (the wrong axis, a
// vocabulary smaller than meant) than a wish for fewer shards.
func FixedShardsPartitioner(numShards int) Partitioner {
	return func(shape []int64, _ tfgo.DataType) (int, error) {
		if err := checkPartitionShape(shape); err != nil {
			return 0, err
		}
		if numShards < 1 {
			return 0, fmt.Errorf("FixedShardsPartitioner: num_shards must be positive, got %d", numShards)
		}
		if shape[0] < int64(numShards) {
			return 0, fmt.Errorf("FixedShardsPartitioner(%d): axis 0 has %d rows, fewer than the %d shards (each shard needs a row; Python would make %d shards silently)", numShards, shape[0], numShards, shape[0])
		}
		return numShards, nil
	}
}

// MinSizePartitioner returns Python's MinSizePartitioner(min_shard_bytes,
// max_shards) (bytes_per_string 16): as many shards as keep each at least
// minShardBytes, at most maxShards and shape[0], at least one
// (min_max_variable_partitioner). Python's defaults are 256<<10 and 1.
func MinSizePartitioner(minShardBytes int64, maxShards int) Partitioner {
	return func(shape []int64, dtype tfgo.DataType) (int, error) {
		if minShardBytes < 1 {
			return 0, fmt.Errorf("MinSizePartitioner: min_shard_bytes must be positive, got %d", minShardBytes)
		}
		if maxShards < 1 {
			return 0, fmt.Errorf("MinSizePartitioner: max_shards must be positive, got %d", maxShards)
		}
		if err := checkPartitionShape(shape); err != nil {
			return 0, err
		}
		n, err := dtypes.NumElements(shape)
		if err != nil {
			return 0, err
		}
		// Python: ceil(total_bytes / min_slice_size) in float64.
		parts := math.Ceil(float64(n*partitionElementSize(dtype)) / float64(minShardBytes))
		k := min(float64(shape[0]), float64(maxShards), parts)
		return int(max(1, k)), nil
	}
}

// MaxSizePartitioner returns Python's MaxSizePartitioner(max_shard_bytes,
// max_shards) (bytes_per_string 16): as few shards as keep each at most
// maxShardBytes, whole rows per shard (variable_axis_size_partitioner);
// maxShards 0 is Python's None, no limit, and a limit wins over the size.
func MaxSizePartitioner(maxShardBytes int64, maxShards int) Partitioner {
	return func(shape []int64, dtype tfgo.DataType) (int, error) {
		if maxShardBytes < 1 {
			return 0, fmt.Errorf("MaxSizePartitioner: max_shard_bytes must be positive, got %d", maxShardBytes)
		}
		if maxShards < 0 {
			return 0, fmt.Errorf("MaxSizePartitioner: max_shards must be positive, got %d", maxShards)
		}
		if err := checkPartitionShape(shape); err != nil {
			return 0, err
		}
		n, err := dtypes.NumElements(shape)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			// Python divides by zero here.
			return 0, fmt.Errorf("MaxSizePartitioner: shape %v has no elements", shape)
		}
		// The same float64 steps as Python, so that borderline sizes round
		// the same way.
		bytesPerRow := 1.0 * (float64(n) / float64(shape[0])) * float64(partitionElementSize(dtype))
		rowsPerShard := max(1, math.Floor(float64(maxShardBytes)/bytesPerRow))
		shards := int(math.Ceil(1.0 * float64(shape[0]) / rowsPerShard))
		if maxShards > 0 {
			shards = min(maxShards, shards)
		}
		return shards, nil
	}
}

func checkPartitionShape(shape []int64) error {
	if len(shape) == 0 {
		return errors.New("a scalar has no axis 0 to partition")
	}
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("shape %v is not fully defined", shape)
		}
	}
	return nil
}

func partitionElementSize(dt tfgo.DataType) int64 {
	if dt == tfgo.String {
		return partitionBytesPerString
	}
	return int64(dt.Size())
}

// ShardedVariable is a variable split along axis 0 into shard variables
// on several devices, as Python's ShardedVariable (what
// ParameterServerStrategy makes with a variable_partitioner): shard i is
// the resource variable "<name>/part_<i>", and with rows = shape[0] and n
// shards, the first rows%n shards hold one row more than the others (the
// "div" layout that tf.nn.embedding_lookup assumes). Saved with a
// ShardedSaver it is one tensor "<name>" stored in slices, which a
// checkpoint reader returns whole and which restores into any number of
// shards.
type ShardedVariable struct {
	name    string
	dtype   tfgo.DataType
	shape   []int64
	shards  []*tfgo.Variable
	devices []string // per shard; "" for the scope's device
	offsets []int64  // row offset of each shard, then shape[0]
}

// NewShardedVariable adds a sharded variable named name (made unique in s
// as name scopes are) of dtype and shape, split into p(shape, dtype) shards
// (at most shape[0]; p nil means one shard), shard i placed on
// devices[i % len(devices)] (no devices: the scope's device), as
// ParameterServerStrategy places shards round robin over its parameter
// servers (Python continues the count across variables; this starts at
// devices[0] for each variable).
//
// The shards' initial values are the rows of the value init gives for the
// whole shape, so the concatenation holds what one variable with init
// would: the full value is computed once, when the initializers run, on the
// scope's device (the cost Python's ParameterServerStrategy pays for
// initializers that do not take a partition). The initializers of
// Python's tf.compat.v1 partitioned variables are called per shard
// instead, so random ones differ from this.
func NewShardedVariable(s *tfgo.Scope, name string, dtype tfgo.DataType, shape []int64, init tfgo.Initializer, p Partitioner, devices []string) (*ShardedVariable, error) {
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("sharded variable %q: %w", name, err)
	}
	if init == nil {
		return nil, fmt.Errorf("sharded variable %q: nil initializer", name)
	}
	if err := checkPartitionShape(shape); err != nil {
		return nil, fmt.Errorf("sharded variable %q: %w", name, err)
	}
	if shape[0] == 0 {
		return nil, fmt.Errorf("sharded variable %q: shape %v has no rows to shard", name, shape)
	}
	n := 1
	if p != nil {
		var err error
		if n, err = p(shape, dtype); err != nil {
			return nil, fmt.Errorf("sharded variable %q of shape %v: %w", name, shape, err)
		}
	}
	if n < 1 {
		return nil, fmt.Errorf("sharded variable %q of shape %v: the partitioner gave %d shards", name, shape, n)
	}
	n = int(min(int64(n), shape[0]))
	for i, d := range devices {
		if d == "" {
			return nil, fmt.Errorf("sharded variable %q: device %d is empty", name, i)
		}
	}

	sv := &ShardedVariable{dtype: dtype, shape: append([]int64(nil), shape...)}
	base, extra := shape[0]/int64(n), shape[0]%int64(n)
	sv.offsets = make([]int64, n+1)
	for i := 0; i < n; i++ {
		rows := base
		if int64(i) < extra {
			rows++
		}
		sv.offsets[i+1] = sv.offsets[i] + rows
	}

	ss := s.SubScope(name).WithoutControlDependencies()
	shardInit := func(i int) tfgo.Initializer { return init }
	if n > 1 {
		full := init.Init(ss.SubScope("initial_value"), shape, dtype)
		shardInit = func(i int) tfgo.Initializer {
			return tfgo.InitializerFunc(func(s *tfgo.Scope, shardShape []int64, _ tfgo.DataType) tfgo.Output {
				if full.Op == nil {
					s.UpdateErr(name, fmt.Errorf("sharded variable %q: the initializer returned no value", name))
					return tfgo.Output{}
				}
				begin := make([]int64, len(shape))
				begin[0] = sv.offsets[i]
				return tfgo.Slice(s, full, tfgo.Const(s.SubScope("begin"), begin), tfgo.Const(s.SubScope("size"), shardShape))
			})
		}
	}
	for i := 0; i < n; i++ {
		shardShape := append([]int64{sv.offsets[i+1] - sv.offsets[i]}, shape[1:]...)
		dev := ""
		vs := ss
		if len(devices) > 0 {
			dev = devices[i%len(devices)]
			vs = ss.WithDevice(dev)
		}
		v := tfgo.NewVariable(vs, fmt.Sprintf("part_%d", i), dtype, shardShape, shardInit(i))
		sv.shards = append(sv.shards, v)
		sv.devices = append(sv.devices, dev)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("sharded variable %q: %w", name, err)
	}
	sv.name = strings.TrimSuffix(sv.shards[0].Name(), "/part_0")
	return sv, nil
}

// Name is the variable's full name ("model/embedding"), the prefix of its
// shards' names and its key in checkpoints.
func (v *ShardedVariable) Name() string {
	if v == nil {
		return ""
	}
	return v.name
}

// DType is the element type of every shard.
func (v *ShardedVariable) DType() tfgo.DataType {
	if v == nil {
		return 0
	}
	return v.dtype
}

// Shape is the full shape: the shards' rows summed, their other dims.
func (v *ShardedVariable) Shape() []int64 {
	if v == nil {
		return nil
	}
	return append([]int64(nil), v.shape...)
}

// Shards are the shard variables in row order, for optimizers and savers
// that treat each as a variable of its own.
func (v *ShardedVariable) Shards() []*tfgo.Variable {
	if v == nil {
		return nil
	}
	return append([]*tfgo.Variable(nil), v.shards...)
}

// Devices are the shards' devices in row order ("" where the scope's
// device was used).
func (v *ShardedVariable) Devices() []string {
	if v == nil {
		return nil
	}
	return append([]string(nil), v.devices...)
}

// Offsets are the first rows of the shards followed by shape[0]: shard i
// holds rows [Offsets()[i], Offsets()[i+1]).
func (v *ShardedVariable) Offsets() []int64 {
	if v == nil {
		return nil
	}
	return append([]int64(nil), v.offsets...)
}

// Initializer is an op that runs every shard's initializer.
func (v *ShardedVariable) Initializer(s *tfgo.Scope) *tfgo.Operation {
	if v == nil || len(v.shards) == 0 || !shardedScopeOK(s) {
		return nil
	}
	var ops []*tfgo.Operation
	for _, sh := range v.shards {
		ops = append(ops, sh.Initializer())
	}
	return s.WithControlDependencies(ops...).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: v.opName("init")})
}

// Value is the whole variable as one tensor, the shards' values
// concatenated (what Python converts a ShardedVariable to): it gathers
// every shard onto one device, so it is for small variables, tests and
// export; use Lookup for embedding rows.
func (v *ShardedVariable) Value(s *tfgo.Scope) tfgo.Output {
	if v == nil || len(v.shards) == 0 || !shardedScopeOK(s) {
		return tfgo.Output{}
	}
	vals := make([]tfgo.Output, len(v.shards))
	for i, sh := range v.shards {
		vals[i] = sh.Value()
	}
	if len(vals) == 1 {
		return tfgo.Identity(s.SubScope(v.opName("value")), vals[0])
	}
	cs := s.SubScope(v.opName("concat"))
	return tfgo.ConcatV2(cs, vals, tfgo.Const(cs.SubScope("axis"), int32(0)))
}

// opName is a name for an op of v's in another scope: its base name and
// what the op does.
func (v *ShardedVariable) opName(what string) string {
	return v.name[strings.LastIndex(v.name, "/")+1:] + "_" + what
}

// shardedScopeOK reports whether s can take ops.
func shardedScopeOK(s *tfgo.Scope) bool { return s != nil && s.Graph() != nil }

// Lookup gathers the rows ids (int32 or int64, any shape) of the variable,
// as tf.nn.embedding_lookup(sharded_variable, ids) does: ids are split
// between the shards by the "div" strategy (DynamicPartition), each shard
// gathers its own rows on its own device (ResourceGather, so the gradient
// reaches only the shard's handle), and the rows are stitched back in
// order (ParallelDynamicStitch) into shape ids.shape + shape[1:]. Ids
// outside [0, shape[0]) fail at run time, in DynamicPartition or the
// gather. Errors stick to s.
func (v *ShardedVariable) Lookup(s *tfgo.Scope, ids tfgo.Output) tfgo.Output {
	if !shardedScopeOK(s) {
		return tfgo.Output{}
	}
	if v == nil || len(v.shards) == 0 {
		s.UpdateErr("embedding_lookup", errors.New("nil or zero ShardedVariable (make one with NewShardedVariable)"))
		return tfgo.Output{}
	}
	if ids.Op == nil {
		s.UpdateErr("embedding_lookup", fmt.Errorf("%s: no ids", v.name))
		return tfgo.Output{}
	}
	idt := ids.DataType()
	if idt != tfgo.Int32 && idt != tfgo.Int64 {
		s.UpdateErr("embedding_lookup", fmt.Errorf("%s: ids are %s, want int32 or int64", v.name, idt))
		return tfgo.Output{}
	}
	ls := s.SubScope("embedding_lookup")
	np := len(v.shards)
	gather := func(i int, pids tfgo.Output) tfgo.Output {
		gs := ls
		if v.devices[i] != "" {
			gs = ls.WithDevice(v.devices[i])
		}
		return tfgo.ResourceGather(gs, v.shards[i].Handle(), pids, v.dtype)
	}
	if np == 1 {
		return tfgo.Identity(ls, gather(0, ids))
	}
	intConst := func(name string, x int64) tfgo.Output {
		if idt == tfgo.Int32 {
			return tfgo.Const(ls.SubScope(name), int32(x))
		}
		return tfgo.Const(ls.SubScope(name), x)
	}
	flat := tfgo.Reshape(ls, ids, tfgo.Const(ls.SubScope("flat"), []int32{-1}))
	positions := tfgo.Range(ls, tfgo.Const(ls.SubScope("zero"), int32(0)),
		tfgo.Size(ls, flat, tfgo.SizeOutType(tfgo.Int32)), tfgo.Const(ls.SubScope("one"), int32(1)))
	// embedding_ops' "div" strategy: the first `extras` shards hold
	// perShard+1 rows, the others perShard.
	perShard, extras := v.shape[0]/int64(np), v.shape[0]%int64(np)
	ipp, ext := intConst("ids_per_partition", perShard), intConst("extras", extras)
	ipp1 := intConst("ids_per_partition_plus_one", perShard+1)
	shifted := tfgo.Sub(ls, flat, ext)
	assign := tfgo.Maximum(ls, tfgo.FloorDiv(ls, flat, ipp1), tfgo.FloorDiv(ls, shifted, ipp))
	local := tfgo.SelectV2(ls, tfgo.Less(ls, assign, ext), tfgo.FloorMod(ls, flat, ipp1), tfgo.FloorMod(ls, shifted, ipp))
	assign32 := tfgo.Cast(ls, assign, tfgo.Int32)
	gatherIDs := tfgo.DynamicPartition(ls, local, assign32, int64(np))
	pindices := tfgo.DynamicPartition(ls, positions, assign32, int64(np))
	if len(gatherIDs) != np || len(pindices) != np { // the scope has the error
		return tfgo.Output{}
	}
	rows := make([]tfgo.Output, np)
	for i := range rows {
		rows[i] = gather(i, gatherIDs[i])
	}
	stitched := tfgo.ParallelDynamicStitch(ls, pindices, rows)
	outShape := tfgo.ConcatV2(ls, []tfgo.Output{
		tfgo.ShapeOf(ls, ids, tfgo.ShapeOutType(tfgo.Int64)),
		tfgo.Const(ls.SubScope("row_shape"), append([]int64{}, v.shape[1:]...)),
	}, tfgo.Const(ls.SubScope("axis"), int32(0)))
	return tfgo.Reshape(ls, stitched, outShape)
}

// sliceSpec is the shape_and_slice string of shard i, as Python's
// Variable.SaveSliceInfo.spec writes it: the full shape, then
// "offset,length" for every dimension ("10 3 4,3:0,3").
func (v *ShardedVariable) sliceSpec(i int) string {
	var b strings.Builder
	for _, d := range v.shape {
		b.WriteString(strconv.FormatInt(d, 10))
		b.WriteByte(' ')
	}
	for d, size := range v.shape {
		if d > 0 {
			b.WriteByte(':')
		}
		if d == 0 {
			fmt.Fprintf(&b, "%d,%d", v.offsets[i], v.offsets[i+1]-v.offsets[i])
		} else {
			fmt.Fprintf(&b, "0,%d", size)
		}
	}
	return b.String()
}

// ShardedSaverOptions configures NewShardedSaver.
type ShardedSaverOptions struct {
	// Keys are the checkpoint keys of the sharded variables, in order; by
	// default their names, as tf.compat.v1.train.Saver keys a partitioned
	// variable. A tf.train.Checkpoint keys a ShardedVariable by its object
	// path ("model/embedding/.ATTRIBUTES/VARIABLE_VALUE").
	Keys []string
	// Variables are unsharded variables saved and restored alongside,
	// under their names.
	Variables []*tfgo.Variable
}

// ShardedSaver saves and restores sharded variables in TensorFlow
// checkpoints with the layout TensorFlow writes for them: each sharded
// variable is one tensor under its key, stored as one slice per shard
// (the SaveV2 kernel with the shards' slice specs, as Python's savers
// write a ShardedVariable or a tf.compat.v1 partitioned variable), so
// tf.train.load_checkpoint(prefix).get_tensor(key) returns it whole and
// savedmodel.BundleReader.Read assembles it. Restore reads each shard's
// rows whatever the slices the checkpoint holds (RestoreV2 with the
// shard's slice spec), so a checkpoint of N shards, of a whole tensor or
// of a Python partitioned variable restores into M shards.
type ShardedSaver struct {
	prefix  tfgo.Output
	save    *tfgo.Operation
	parts   [2]tfgo.Output
	merged  tfgo.Output
	save2   *tfgo.Operation
	restore *tfgo.Operation
	entries []shardedEntry
}

// shardedEntry is one tensor the saver writes: a shard (a slice of key) or a
// whole variable.
type shardedEntry struct {
	key, spec string
	value     tfgo.Output
	dtype     tfgo.DataType
	fullShape []int64
	slice     []savedmodel.Extent // nil: stored whole
	bytes     int64
}

var errNilShardedSaver = errors.New("distribute: nil or zero ShardedSaver (make one with NewShardedSaver)")

// NewShardedSaver adds save and restore ops for vars (and
// opts.Variables) under s's "save" namespace. Build it once; Save and
// Restore each run one of its ops.
func NewShardedSaver(s *tfgo.Scope, vars []*ShardedVariable, opts ShardedSaverOptions) (*ShardedSaver, error) {
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("sharded saver: %w", err)
	}
	if opts.Keys != nil && len(opts.Keys) != len(vars) {
		return nil, fmt.Errorf("sharded saver: %d keys for %d sharded variables", len(opts.Keys), len(vars))
	}
	sv := &ShardedSaver{}
	seen := map[string]bool{}
	addKey := func(k string) error {
		if k == "" {
			return errors.New("sharded saver: empty checkpoint key")
		}
		if seen[k] {
			return fmt.Errorf("sharded saver: checkpoint key %q used twice", k)
		}
		seen[k] = true
		return nil
	}
	for i, v := range vars {
		if v == nil || len(v.shards) == 0 {
			return nil, fmt.Errorf("sharded saver: sharded variable %d is nil", i)
		}
		key := v.name
		if opts.Keys != nil {
			key = opts.Keys[i]
		}
		if err := addKey(key); err != nil {
			return nil, err
		}
		for j, sh := range v.shards {
			n, _ := dtypes.NumElements(sh.Shape())
			slice := make([]savedmodel.Extent, len(v.shape))
			slice[0] = savedmodel.Extent{Start: v.offsets[j], Length: v.offsets[j+1] - v.offsets[j]}
			for d := 1; d < len(v.shape); d++ {
				slice[d] = savedmodel.Extent{Start: 0, Length: v.shape[d]}
			}
			sv.entries = append(sv.entries, shardedEntry{key: key, spec: v.sliceSpec(j), value: sh.Value(), dtype: v.dtype,
				fullShape: v.shape, slice: slice, bytes: n * partitionElementSize(v.dtype)})
		}
	}
	for i, v := range opts.Variables {
		if v == nil || v.Handle().Op == nil {
			return nil, fmt.Errorf("sharded saver: variable %d is nil or was not created", i)
		}
		if err := addKey(v.Name()); err != nil {
			return nil, err
		}
		n, _ := dtypes.NumElements(v.Shape())
		sv.entries = append(sv.entries, shardedEntry{key: v.Name(), value: v.Value(), dtype: v.DType(),
			fullShape: v.Shape(), bytes: n * partitionElementSize(v.DType())})
	}
	if len(sv.entries) == 0 {
		return nil, errors.New("sharded saver: no variables to save")
	}

	ss := s.SubScope("save")
	sv.prefix = tfgo.Placeholder(ss.SubScope("filename"), tfgo.String)
	sv.save = shardedSaveOp(ss, sv.prefix, sv.entries)
	if len(sv.entries) > 1 {
		// The two-shard checkpoint that ReplaceBundle asks for every other
		// save: one SaveV2 per half, merged by MergeV2Checkpoints, which
		// unions the slice lists of a key written by both halves.
		var groups [2][]shardedEntry
		var bytes [2]int64
		for _, e := range sv.entries {
			g := 0
			if bytes[1] < bytes[0] || (bytes[1] == bytes[0] && len(groups[1]) < len(groups[0])) {
				g = 1
			}
			bytes[g] += e.bytes
			groups[g] = append(groups[g], e)
		}
		var saves []*tfgo.Operation
		for g := range 2 {
			gs := ss.SubScope(fmt.Sprintf("shard_%d", g))
			sv.parts[g] = tfgo.Placeholder(gs.SubScope("filename"), tfgo.String)
			saves = append(saves, shardedSaveOp(gs, sv.parts[g], groups[g]))
		}
		sv.merged = tfgo.Placeholder(ss.SubScope("merged_filename"), tfgo.String)
		sv.save2 = tfgo.MergeV2Checkpoints(ss.WithControlDependencies(saves...), tfgo.Pack(ss, sv.parts[:]), sv.merged,
			tfgo.MergeV2CheckpointsDeleteOldDirs(false))
	}

	names, specs, dts := shardedColumns(sv.entries)
	restored := tfgo.RestoreV2(ss, sv.prefix, tfgo.Const(ss.SubScope("tensor_names"), names),
		tfgo.Const(ss.SubScope("shape_and_slices"), specs), dts)
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("sharded saver: %w", err)
	}
	var assigns []*tfgo.Operation
	i := 0
	for _, v := range vars {
		for j, sh := range v.shards {
			as := ss
			if v.devices[j] != "" {
				as = ss.WithDevice(v.devices[j])
			}
			assigns = append(assigns, sh.Assign(as, restored[i]))
			i++
		}
	}
	for _, v := range opts.Variables {
		assigns = append(assigns, v.Assign(ss, restored[i]))
		i++
	}
	sv.restore = ss.WithControlDependencies(assigns...).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "restore_all"})
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("sharded saver: %w", err)
	}
	return sv, nil
}

func shardedColumns(es []shardedEntry) (names, specs []string, dts []tfgo.DataType) {
	for _, e := range es {
		names = append(names, e.key)
		specs = append(specs, e.spec)
		dts = append(dts, e.dtype)
	}
	return names, specs, dts
}

func shardedSaveOp(s *tfgo.Scope, prefix tfgo.Output, es []shardedEntry) *tfgo.Operation {
	names, specs, _ := shardedColumns(es)
	values := make([]tfgo.Output, len(es))
	for i, e := range es {
		values[i] = e.value
	}
	return tfgo.SaveV2(s, prefix, tfgo.Const(s.SubScope("tensor_names"), names),
		tfgo.Const(s.SubScope("shape_and_slices"), specs), values)
}

// Save writes the variables' current values as the checkpoint prefix,
// crash-safely as tfgo.Saver.Save does (savedmodel.ReplaceBundle: a kill
// at any instant leaves the previous checkpoint or the new one).
func (sv *ShardedSaver) Save(sess *tfgo.Session, prefix string) error {
	if sv == nil || sv.save == nil || sv.restore == nil {
		return errNilShardedSaver
	}
	if sess == nil {
		return fmt.Errorf("saving %s: nil session", prefix)
	}
	err := savedmodel.ReplaceBundle(prefix, func(tmp string, numShards int) error {
		switch {
		case numShards == 1:
			_, err := sess.Run(map[tfgo.Output]any{sv.prefix: tmp}, nil, sv.save)
			return err
		case sv.save2 != nil:
			dir := filepath.Dir(tmp)
			_, err := sess.Run(map[tfgo.Output]any{
				sv.parts[0]: filepath.Join(dir, "part-00000-of-00002"),
				sv.parts[1]: filepath.Join(dir, "part-00001-of-00002"),
				sv.merged:   tmp,
			}, nil, sv.save2)
			return err
		}
		// One tensor cannot fill two SaveV2 shards: write it from Go.
		return sv.writeFromGo(sess, tmp, numShards)
	})
	if err != nil {
		return fmt.Errorf("saving %s: %w", prefix, err)
	}
	return nil
}

// writeFromGo writes the entries with the pure-Go bundle writer, in the
// layout SaveV2 gives them. ReplaceBundle syncs them before the renames:
// DirectIO has the bytes on the device by then.
func (sv *ShardedSaver) writeFromGo(sess *tfgo.Session, prefix string, numShards int) error {
	w, err := savedmodel.NewBundleWriter(prefix, savedmodel.WriteOptions{NumShards: numShards, NoSync: true, IO: savedmodel.DirectIO})
	if err != nil {
		return err
	}
	for _, e := range sv.entries {
		if err := writeShardedEntry(sess, w, e); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}

func writeShardedEntry(sess *tfgo.Session, w *savedmodel.BundleWriter, e shardedEntry) error {
	out, err := sess.Run(nil, []tfgo.Output{e.value})
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.key, err)
	}
	t := out[0]
	defer t.Close()
	bt := &savedmodel.Tensor{DType: t.DataType(), Shape: t.Shape()}
	if t.DataType() == tfgo.String {
		if bt.Strings, err = t.Strings(); err != nil {
			return fmt.Errorf("reading %s: %w", e.key, err)
		}
	} else {
		bt.Data = t.Data()
	}
	if e.slice == nil {
		return w.Add(e.key, bt)
	}
	return w.AddSlice(e.key, e.fullShape, e.slice, bt)
}

// Restore assigns every variable its rows from the checkpoint prefix.
// Each key is checked first (present, same dtype and full shape; errors
// name the key and the checkpoint), so a mismatch changes nothing.
func (sv *ShardedSaver) Restore(sess *tfgo.Session, prefix string) error {
	if sv == nil || sv.save == nil || sv.restore == nil {
		return errNilShardedSaver
	}
	if sess == nil {
		return fmt.Errorf("restoring %s: nil session", prefix)
	}
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		return fmt.Errorf("restoring %s: %w", prefix, err)
	}
	defer r.Close()
	checked := map[string]bool{}
	for _, e := range sv.entries {
		if checked[e.key] {
			continue
		}
		checked[e.key] = true
		got, err := r.Entry(e.key)
		if err != nil {
			return fmt.Errorf("restoring %s: %w", prefix, err)
		}
		if got.DType != e.dtype || !slices.Equal(got.Shape, e.fullShape) {
			return fmt.Errorf("restoring %s: %q is %s %v in the checkpoint, the variable is %s %v",
				prefix, e.key, got.DType, got.Shape, e.dtype, e.fullShape)
		}
	}
	if _, err := sess.Run(map[tfgo.Output]any{sv.prefix: prefix}, nil, sv.restore); err != nil {
		return fmt.Errorf("restoring %s: %w", prefix, err)
	}
	return nil
}
