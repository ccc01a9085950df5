// Package modelstats measures a keraslike model the way the quantization
// report and benchmark compare variants: inference latency, the MatMul
// kernels TensorFlow ran, next-token loss on held-out windows, and size on
// disk. It is shared by cmd/gotf (quantize) and cmd/benchquant.
package modelstats

import (
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/tfgo"
)

// Latency is the median wall time of one run of m's inference graph on x,
// over iters runs after three untimed ones.
func Latency(m *keraslike.Model, x *tfgo.Tensor, iters int) (time.Duration, error) {
	sess, err := m.Session()
	if err != nil {
		return 0, err
	}
	feeds := map[tfgo.Output]any{m.Input(): x}
	var ts []time.Duration
	for i := 0; i < iters+3; i++ {
		start := time.Now()
		out, err := sess.Run(feeds, []tfgo.Output{m.Output()})
		if err != nil {
			return 0, err
		}
		if i >= 3 {
			ts = append(ts, time.Since(start))
		}
		out[0].Close()
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts[len(ts)/2], nil
}

// Kernels counts the MatMul-family nodes of one traced run of m on x, in
// its partition graphs (after Grappler and the oneDNN rewrite), keyed
// "op[input dtype]": which kernels a variant really ran.
func Kernels(m *keraslike.Model, x *tfgo.Tensor) (map[string]int, error) {
	sess, err := m.Session()
	if err != nil {
		return nil, err
	}
	out, tr, err := sess.RunTraced(map[tfgo.Output]any{m.Input(): x}, []tfgo.Output{m.Output()})
	if err != nil {
		return nil, err
	}
	out[0].Close()
	ks := map[string]int{}
	for _, g := range tr.Metadata.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			if !strings.Contains(n.GetOp(), "MatMul") {
				continue
			}
			dt := "?"
			for _, a := range []string{"T", "Ta", "T1"} {
				if v, ok := n.GetAttr()[a]; ok {
					dt = strings.ToLower(strings.TrimPrefix(v.GetType().String(), "DT_"))
					break
				}
			}
			ks[n.GetOp()+"["+dt+"]"]++
		}
	}
	return ks, nil
}

// NextTokenLoss is the mean cross-entropy of logits [B, T, V] against the
// targets [B][T], by TensorFlow's SparseSoftmaxCrossEntropyWithLogits
// (what the main job's loss runs) in a graph of its own.
func NextTokenLoss(logits *tfgo.Tensor, targets [][]int32) (float64, error) {
	sh := logits.Shape()
	flat := make([]int32, 0, len(targets)*len(targets[0]))
	for _, row := range targets {
		flat = append(flat, row...)
	}
	s := tfgo.NewScope()
	l := tfgo.Reshape(s, tfgo.Const(s, logits), tfgo.Const(s, []int64{-1, sh[len(sh)-1]}))
	ce, _ := tfgo.SparseSoftmaxCrossEntropyWithLogits(s, l, tfgo.Const(s, flat))
	mean := tfgo.Mean(s, ce, tfgo.Const(s, int32(0)))
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	out, err := sess.Run(nil, []tfgo.Output{mean})
	if err != nil {
		return 0, err
	}
	defer out[0].Close()
	v, err := tfgo.Float32s(out[0])
	if err != nil {
		return 0, err
	}
	return float64(v[0]), nil
}

// Size is the bytes of the files at path: a file's size, or the total of
// a directory's files.
func Size(path string) (int64, error) {
	var n int64
	err := filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	return n, err
}
