package tfgo

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/gotf/gotf/savedmodel"
)

// StreamingSaver saves and restores variables through Go, one variable at a
// time per data shard, with package savedmodel's pure-Go TensorBundle writer
// and reader: memory beyond the variables stays at about one variable per
// shard, however large the model, and the shards are written and read in
// parallel. The files are TensorFlow checkpoints, as Saver writes. Unlike
// Saver it can restore from a checkpoint that holds more than its
// variables (build one over the subset to restore) and takes
// savedmodel.WriteOptions (shards, O_DIRECT).
type StreamingSaver struct {
	keys    []string
	vars    []*Variable
	holders []Output // one placeholder per variable, fed on restore
	assigns []*Operation
}

// NewStreamingSaver adds a placeholder and an assign per variable of vars
// (all the graph's variables when vars is nil) under the scope's
// "streaming_saver" namespace. The checkpoint keys are keys, or the
// variables' names when keys is nil.
func NewStreamingSaver(s *Scope, vars []*Variable, keys []string) *StreamingSaver {
	if vars == nil {
		vars = Variables(s)
	}
	ss := s.SubScope("streaming_saver")
	sv := &StreamingSaver{vars: vars, keys: keys}
	if keys == nil {
		for _, v := range vars {
			sv.keys = append(sv.keys, v.Name())
		}
	}
	if len(sv.keys) != len(vars) {
		ss.UpdateErr("streaming_saver", fmt.Errorf("%d keys for %d variables", len(sv.keys), len(vars)))
		return sv
	}
	for _, v := range vars {
		p := Placeholder(ss, v.DType(), v.Shape()...)
		sv.holders = append(sv.holders, p)
		sv.assigns = append(sv.assigns, v.Assign(ss, p))
	}
	return sv
}

func (sv *StreamingSaver) usable() error {
	if sv == nil {
		return errors.New("nil StreamingSaver (make one with NewStreamingSaver)")
	}
	if len(sv.assigns) != len(sv.vars) || slices.Contains(sv.assigns, nil) {
		return fmt.Errorf("streaming saver was not built (see the scope's error)")
	}
	return nil
}

// Save writes the variables' current values as the checkpoint prefix
// (see SaveVariables).
func (sv *StreamingSaver) Save(sess *Session, prefix string, opts savedmodel.WriteOptions) error {
	if err := sv.usable(); err != nil {
		return err
	}
	return SaveVariables(sess, prefix, sv.keys, sv.vars, opts)
}

// SaveVariables writes the current values of vars, under keys (keys[i] for
// vars[i]), as the checkpoint prefix, adding nothing to the graph: one
// goroutine per data shard reads a variable, writes it from TensorFlow's
// buffer and frees it. A checkpoint already at prefix stays readable until
// the new one is complete, and a kill at any instant leaves the old
// complete checkpoint or the new one: when the old one has opts.NumShards
// data shards, the new one gets one more, empty, so that its data files
// never take the names the old index references (see
// savedmodel.BundleWriter).
func SaveVariables(sess *Session, prefix string, keys []string, vars []*Variable, opts savedmodel.WriteOptions) error {
	if len(keys) != len(vars) {
		return fmt.Errorf("saving %s: %d keys for %d variables", prefix, len(keys), len(vars))
	}
	w, err := savedmodel.NewBundleWriter(prefix, opts)
	if err != nil {
		return err
	}
	err = parallel(max(1, opts.NumShards), len(vars), func(i int) error {
		out, err := sess.Run(nil, []Output{vars[i].Value()})
		if err != nil {
			return fmt.Errorf("reading %s: %w", vars[i].Name(), err)
		}
		t := out[0]
		defer t.Close()
		bt := &savedmodel.Tensor{DType: t.DataType(), Shape: t.Shape()}
		if t.DataType() == String {
			if bt.Strings, err = t.Strings(); err != nil {
				return fmt.Errorf("reading %s: %w", vars[i].Name(), err)
			}
		} else {
			bt.Data = t.Data()
		}
		return w.Add(keys[i], bt)
	})
	if err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// Restore assigns every variable its value in the checkpoint prefix.
// Every key is checked first (present, same dtype and shape, errors naming
// the key and the checkpoint), so a mismatch changes nothing; a tensor
// found corrupt while reading leaves the variables read before it
// restored. Each variable is read straight into a new TensorFlow tensor,
// which the assign then adopts or copies.
func (sv *StreamingSaver) Restore(sess *Session, prefix string, opts savedmodel.ReadOptions) error {
	if err := sv.usable(); err != nil {
		return err
	}
	r, err := savedmodel.OpenBundleWithOptions(prefix, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	return sv.RestoreFrom(sess, r)
}

// RestoreFrom is Restore from a bundle already open, for a caller that
// looked at its keys first; r stays open.
func (sv *StreamingSaver) RestoreFrom(sess *Session, r *savedmodel.BundleReader) error {
	if err := sv.usable(); err != nil {
		return err
	}
	if r == nil {
		return errors.New("restoring from a nil BundleReader")
	}
	prefix := r.Prefix()
	for i, key := range sv.keys {
		e, err := r.Entry(key)
		if err != nil {
			return err
		}
		v := sv.vars[i]
		if e.DType != v.DType() || !slices.Equal(e.Shape, v.Shape()) && !(len(e.Shape) == 0 && len(v.Shape()) == 0) {
			return fmt.Errorf("checkpoint %s: %q is %s%v, variable %s is %s%v", prefix, key, e.DType, e.Shape, v.Name(), v.DType(), v.Shape())
		}
	}
	return parallel(max(1, int(r.Header().GetNumShards())), len(sv.vars), func(i int) error {
		v, key := sv.vars[i], sv.keys[i]
		if v.DType() == String {
			bt, err := r.Read(key)
			if err != nil {
				return err
			}
			st, err := NewStringTensor(bt.Shape, bt.Strings)
			if err != nil {
				return fmt.Errorf("checkpoint %s: %q: %w", prefix, key, err)
			}
			defer st.Close()
			_, err = sess.Run(map[Output]any{sv.holders[i]: st}, nil, sv.assigns[i])
			return err
		}
		// A new tensor each time: AssignVariableOp may adopt the fed
		// buffer instead of copying it, so a reused one would alias
		// variables.
		t, err := AllocateTensor(v.DType(), v.Shape())
		if err != nil {
			return err
		}
		defer t.Close()
		if err := r.ReadInto(key, &fill{b: t.Data()}); err != nil {
			return err
		}
		if _, err := sess.Run(map[Output]any{sv.holders[i]: t}, nil, sv.assigns[i]); err != nil {
			return fmt.Errorf("restoring %s: %w", v.Name(), err)
		}
		return nil
	})
}

// parallel runs do for i in [0, count) on n goroutines, stopping at the
// first error.
func parallel(n, count int, do func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, n)
	var stop sync.Once
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range min(n, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := do(i); err != nil {
					errs <- err
					stop.Do(func() { close(done) })
					return
				}
			}
		}()
	}
feed:
	for i := range count {
		select {
		case next <- i:
		case <-done:
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs // nil when no goroutine failed
}

// fill is an io.Writer into a fixed buffer: a tensor's data.
type fill struct{ b []byte }

func (f *fill) Write(p []byte) (int, error) {
	if len(p) > len(f.b) {
		return 0, fmt.Errorf("%d bytes more than the tensor holds", len(p)-len(f.b))
	}
	f.b = f.b[copy(f.b, p):]
	return len(p), nil
}
