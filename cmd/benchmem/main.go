// Command benchmem measures the two memory levers of a GPT train step on the
// real TensorFlow runtime: mixed precision (the mixed_bfloat16 dtype policy:
// bfloat16 compute, float32 weights) and gradient checkpointing
// (GPTConfig.Remat: every block recomputed in the backward pass). It trains
// a GPT (post-LN blocks, Adam 1e-3, sparse categorical cross-entropy from
// logits, synthetic token ids made here) in four configurations: float32,
// mixed_bfloat16, float32 + remat and mixed_bfloat16 + remat. For each it
// reports
//
//   - the median wall time of one train step (one untraced session run of
//     forward, backward and Adam update) over -steps steps after -warmup;
//   - the step's peak memory as TensorFlow's allocators recorded it
//     (tfgo.Session.RunWithMemory on one more step): what the step's
//     kernels held at once — activations, gradients, temporaries — not the
//     weights and Adam slots, which are allocated before the step;
//   - the weights + Adam slots (params × 4 bytes × 3, all float32 under
//     both policies), the weights' compute-dtype copies a mixed policy
//     makes per step, and the activations kept: what the step's kernels
//     held when the forward pass ended (the loss computed), minus those
//     copies — what the forward pass keeps for the backward one;
//   - the ratios against float32;
//
// and, from one fully traced step (tfgo.Session.RunTraced), the MatMul-family
// kernels that ran (partition graphs after Grappler and the oneDNN rewrite)
// with their "T" dtype, counted, for float32 and mixed_bfloat16.
//
// It prints the machine (CPU model and flags, cores, TensorFlow version) and
// one markdown table, and writes the same report to
// bench/<date>-memory-<cpu>.md. Run it with
//
//	make bench-memory                      # ARGS="-steps 5" to change flags
//	go run ./cmd/benchmem -layers 12 -d-model 256 -heads 4 -seq 128 -batch 8 -steps 10
//
// (after `eval "$(make -s env)"` for plain go run).
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gotf/gotf/internal/cpuinfo"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

type flags struct {
	layers, dModel, heads, seq, batch, vocab int
	steps, warmup                            int
	out                                      string
}

// config is one of the four measured configurations.
type config struct {
	name   string
	policy mixedprecision.Policy
	remat  bool
}

// result is one configuration's measurements.
type result struct {
	config
	err      error
	params   int64
	stepMs   float64  // median
	peak     int64    // TensorFlow allocator, step kernels only
	maxInUse int64    // largest allocator bytes-in-use at a kernel end (0: not recorded)
	copies   int64    // bytes of the weights' compute-dtype copies (mixed policies)
	kept     int64    // bytes the kernels held when the forward pass ended (the loss computed); -1 unknown
	holders  []holder // the largest holders of kept, by op type and dtype
	kernels  map[string]int
}

func main() {
	var f flags
	flag.IntVar(&f.layers, "layers", 12, "transformer blocks")
	flag.IntVar(&f.dModel, "d-model", 256, "model width")
	flag.IntVar(&f.heads, "heads", 4, "attention heads")
	flag.IntVar(&f.seq, "seq", 128, "sequence length")
	flag.IntVar(&f.batch, "batch", 8, "batch size")
	flag.IntVar(&f.vocab, "vocab", 256, "vocabulary size")
	flag.IntVar(&f.steps, "steps", 10, "timed train steps per configuration (median reported)")
	flag.IntVar(&f.warmup, "warmup", 2, "untimed train steps first")
	flag.StringVar(&f.out, "out", "bench", "directory of the markdown report (\"\": none)")
	flag.Parse()
	if f.steps < 1 || f.warmup < 0 {
		log.Fatal("-steps must be >= 1 and -warmup >= 0")
	}

	ci := cpuinfo.Read()
	cpu, cpuFlags := ci.Model, ci.Flags("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "CPU: %s; flags: %s; %d cores; TensorFlow %s; Go %s\n",
		cpu, cpuFlags, runtime.NumCPU(), tfgo.Version(), runtime.Version())
	fmt.Fprintf(&hdr, "GPT: %d blocks, d_model %d, %d heads, seq %d, batch %d, vocab %d (post-LN, no dropout); Adam 1e-3, sparse categorical cross-entropy from logits; %d timed steps after %d warm-up\n",
		f.layers, f.dModel, f.heads, f.seq, f.batch, f.vocab, f.steps, f.warmup)
	fmt.Print(hdr.String())

	configs := []config{
		{"float32", mixedprecision.Float32, false},
		{"mixed_bfloat16", mixedprecision.MixedBFloat16, false},
		{"float32 + remat", mixedprecision.Float32, true},
		{"mixed_bfloat16 + remat", mixedprecision.MixedBFloat16, true},
	}
	var results []result
	for _, c := range configs {
		fmt.Fprintf(os.Stderr, "measuring %s ...\n", c.name)
		r := measure(f, c)
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, r.err)
		}
		results = append(results, r)
	}
	mixedprecision.SetGlobalPolicy(mixedprecision.Float32)

	report := hdr.String() + "\n" + table(results) + "\n" + kernelReport(results) + "\n" + holdersReport(results) + "\n" + notes
	fmt.Print("\n" + table(results) + "\n" + kernelReport(results) + "\n" + holdersReport(results) + "\n" + notes)
	if f.out != "" {
		if err := os.MkdirAll(f.out, 0o755); err != nil {
			log.Fatal(err)
		}
		path := filepath.Join(f.out, fmt.Sprintf("%s-memory-%s.md", time.Now().Format("2006-01-02"), cpuinfo.FileName(cpu)))
		body := "# Memory levers: mixed precision and gradient checkpointing\n\n" +
			"`" + strings.TrimSpace("go run ./cmd/benchmem "+strings.Join(os.Args[1:], " ")) + "` (make bench-memory)\n\n" + report
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("\nwritten to %s\n", path)
	}
	for _, r := range results {
		if r.err != nil {
			os.Exit(1)
		}
	}
}

const notes = `Step peak: the most the train step's kernels held at once, replayed from TensorFlow's allocation records of one traced step (tfgo.Session.RunWithMemory); it excludes the weights and the Adam slots, allocated before the step, and the fed batch.
Weights + Adam: params x 4 bytes x 3 (weights, m, v; float32 under both policies), persistent between steps.
Weight copies: the step's casts of float32 weights to the compute dtype (mixed policies: bfloat16 copies of the weights that layers multiply with, made once per step and held until their gradient use), from the training graph's Cast ops.
Activations kept: what the step's kernels held when the forward pass ended (the loss computed; every op of the backward pass waits for its gradient), replayed from the same allocation records, minus the weight copies: the activations the forward pass keeps for the backward one.
Total: weights + Adam + step peak. Time x and memory -% are against float32.
Allocator max in use: the largest bytes-in-use TensorFlow's CPU allocator reported at a kernel end of the traced step: everything it held (weights, Adam slots, fed batch, the step's tensors); a cross-check of total.
`

// weightCopies is the size of the casts of weights to the compute dtype in
// the training pass: under a mixed policy each float32 weight a layer
// multiplies with is cast once per step (LayerNormalization's and the
// gathered embedding's are not), and the copy lives until its gradient
// use. It is weight memory, not activations.
func weightCopies(m *keraslike.Model) int64 {
	var n int64
	for _, op := range m.Scope().Graph().Operations() {
		if op.Type() != "Cast" || !strings.HasPrefix(op.Name(), "train/") || op.NumInputs() != 1 || op.Input(0).Op.Type() != "ReadVariableOp" {
			continue
		}
		out := op.Output(0)
		sh, err := out.Shape()
		if err != nil || !sh.IsFullyDefined() {
			continue
		}
		size := int64(out.DataType().Size())
		for _, d := range sh.Dims {
			size *= d
		}
		n += size
	}
	return n
}

// measure builds, compiles and runs one configuration.
func measure(f flags, c config) (r result) {
	r.config = c
	defer func() {
		if p := recover(); p != nil {
			r.err = fmt.Errorf("panic: %v", p)
		}
	}()
	mixedprecision.SetGlobalPolicy(c.policy)
	keraslike.ResetNames()
	m, err := keraslike.NewGPT("gpt", keraslike.GPTConfig{
		Vocab: f.vocab, SeqLen: f.seq, DModel: f.dModel, Heads: f.heads, Layers: f.layers,
		Remat: c.remat, Float32Logits: c.policy.IsMixed(),
	})
	if err != nil {
		r.err = fmt.Errorf("NewGPT: %w", err)
		return r
	}
	defer m.Close()
	opt := &stepRecorder{Adam: keraslike.NewAdam(keraslike.AdamOptions{OptimizerOptions: keraslike.OptimizerOptions{LearningRate: 1e-3}})}
	loss := &lossRecorder{SparseCategoricalCrossentropy: keraslike.SparseCategoricalCrossentropy{FromLogits: true}}
	if err := m.Compile(keraslike.CompileOptions{Optimizer: opt, Loss: loss, BatchSize: f.batch}); err != nil {
		r.err = fmt.Errorf("Compile: %w", err)
		return r
	}
	r.params = m.CountParams()
	r.copies = weightCopies(m)
	if opt.step == nil || loss.yTrue.Op == nil {
		r.err = errors.New("Compile did not call the optimizer's Apply or the loss' Compute")
		return r
	}
	x, err := trainInput(m, loss.yTrue)
	if err != nil {
		r.err = err
		return r
	}
	sess, err := m.Session()
	if err != nil {
		r.err = fmt.Errorf("session: %w", err)
		return r
	}

	// Synthetic next-token data: a few distinct batches, cycled.
	rng := rand.New(rand.NewSource(1))
	var feeds []map[tfgo.Output]any
	for range 4 {
		ids, next := make([][]int32, f.batch), make([][]int32, f.batch)
		for i := range ids {
			row := make([]int32, f.seq+1)
			for j := range row {
				row[j] = int32(rng.Intn(f.vocab))
			}
			ids[i], next[i] = row[:f.seq], row[1:]
		}
		xt, err := tfgo.NewTensor(ids)
		if err != nil {
			r.err = err
			return r
		}
		yt, err := tfgo.NewTensor(next)
		if err != nil {
			r.err = err
			return r
		}
		feeds = append(feeds, map[tfgo.Output]any{x: xt, loss.yTrue: yt})
	}
	fetch := []tfgo.Output{loss.loss}

	for i := range f.warmup {
		if _, err := sess.Run(feeds[i%len(feeds)], fetch, opt.step); err != nil {
			r.err = fmt.Errorf("warm-up step %d: %w", i, err)
			return r
		}
	}
	times := make([]float64, f.steps)
	for i := range f.steps {
		start := time.Now()
		_, err := sess.Run(feeds[i%len(feeds)], fetch, opt.step)
		times[i] = float64(time.Since(start).Microseconds()) / 1e3
		if err != nil {
			r.err = fmt.Errorf("step %d: %w", i, err)
			return r
		}
	}
	sort.Float64s(times)
	r.stepMs = median(times)

	_, mem, err := sess.RunWithMemory(feeds[0], fetch, opt.step)
	if err != nil {
		r.err = fmt.Errorf("traced step (memory): %w", err)
		return r
	}
	r.peak = mem.PeakBytes
	for _, d := range mem.Devices {
		for _, a := range d.Allocators {
			r.maxInUse = max(r.maxInUse, a.MaxBytesInUse)
		}
	}

	_, tr, err := sess.RunTraced(feeds[1], fetch, opt.step)
	if err != nil {
		r.err = fmt.Errorf("traced step (kernels): %w", err)
		return r
	}
	r.kernels = matMulKernels(tr)
	r.kept, r.holders = liveAtEnd(tr.Metadata, loss.loss.Op.Name())
	return r
}

// holder is what the ops of one type and output dtype held at the end of
// the forward pass.
type holder struct {
	kind  string // "Softmax float", "_MklMatMul bfloat16"
	bytes int64
}

// liveAtEnd is the bytes the step's kernels held when the node named name
// (the loss: every op of the backward pass waits for its gradient) ended:
// the allocation records replayed in time order up to that moment, i.e.
// what the forward pass keeps for the backward one. -1 when the node is not
// in the step stats.
func liveAtEnd(md *cpb.RunMetadata, name string) (int64, []holder) {
	kinds := map[string]string{} // node -> "type dtype", from the partition graphs
	for _, g := range md.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			k := n.GetOp()
			for _, a := range []string{"T", "DstT", "dtype"} {
				if v, ok := n.GetAttr()[a]; ok && v.GetType() != 0 {
					k += " " + tfgo.DataType(v.GetType()).String()
					break
				}
			}
			kinds[n.GetName()] = k
		}
	}
	end := int64(-1)
	type rec struct {
		at, bytes int64
		node      string
	}
	var recs []rec
	for _, d := range md.GetStepStats().GetDevStats() {
		for _, n := range d.GetNodeStats() {
			if n.GetNodeName() == name {
				end = max(end, n.GetAllStartMicros()+n.GetAllEndRelMicros())
			}
			for _, m := range n.GetMemory() {
				for _, a := range m.GetAllocationRecords() {
					recs = append(recs, rec{a.GetAllocMicros(), a.GetAllocBytes(), n.GetNodeName()})
				}
			}
		}
	}
	if end < 0 {
		return -1, nil
	}
	var live int64
	byKind := map[string]int64{}
	for _, r := range recs {
		if r.at <= end {
			live += r.bytes
			byKind[kinds[r.node]] += r.bytes
		}
	}
	var hs []holder
	for k, b := range byKind {
		if b > 0 {
			hs = append(hs, holder{k, b})
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].bytes > hs[j].bytes })
	return live, hs[:min(len(hs), 8)]
}

// stepRecorder is Adam, keeping the train step op Compile makes from it.
type stepRecorder struct {
	*keraslike.Adam
	step *tfgo.Operation
}

func (o *stepRecorder) Apply(s *tfgo.Scope, ws []*keraslike.Weight, grads []tfgo.Output) *tfgo.Operation {
	o.step = o.Adam.Apply(s, ws, grads)
	return o.step
}

// lossRecorder is the loss, keeping the training target placeholder and
// the loss Compile makes (the first Compute: the training graph's).
type lossRecorder struct {
	keraslike.SparseCategoricalCrossentropy
	yTrue, loss tfgo.Output
}

func (l *lossRecorder) Compute(s *tfgo.Scope, yTrue, yPred tfgo.Output) (tfgo.Output, error) {
	out, err := l.SparseCategoricalCrossentropy.Compute(s, yTrue, yPred)
	if l.yTrue.Op == nil {
		l.yTrue, l.loss = yTrue, out
	}
	return out, err
}

// trainInput finds the training graph's input placeholder (Compile names
// it train/input/...): the Placeholder under train/ that is not the target.
func trainInput(m *keraslike.Model, yTrue tfgo.Output) (tfgo.Output, error) {
	var found []tfgo.Output
	for _, op := range m.Scope().Graph().Operations() {
		if op.Type() == "Placeholder" && strings.HasPrefix(op.Name(), "train/input") && op.Name() != yTrue.Op.Name() {
			found = append(found, op.Output(0))
		}
	}
	if len(found) != 1 {
		return tfgo.Output{}, fmt.Errorf("want one train/input placeholder in the graph, found %d", len(found))
	}
	return found[0], nil
}

var matMulFamily = regexp.MustCompile(`MatMul|Einsum|Conv`)

// matMulKernels counts the executed MatMul-family nodes of the partition
// graphs by "op[T]".
func matMulKernels(tr *tfgo.Trace) map[string]int {
	out := map[string]int{}
	for _, g := range tr.Metadata.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			if !matMulFamily.MatchString(n.GetOp()) {
				continue
			}
			dt := "?"
			if a, ok := n.GetAttr()["T"]; ok {
				dt = strings.ToLower(strings.TrimPrefix(a.GetType().String(), "DT_"))
			}
			out[n.GetOp()+"["+dt+"]"]++
		}
	}
	return out
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func table(rs []result) string {
	var b strings.Builder
	b.WriteString("| configuration | params | step ms (median) | time x | step peak MiB | peak -% | weights + Adam MiB | weight copies MiB | activations kept MiB | activations -% | total MiB | allocator max in use MiB |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var base *result
	if len(rs) > 0 && rs[0].err == nil {
		base = &rs[0]
	}
	pct := func(v, of int64) string { return fmt.Sprintf("%.0f", 100*(1-float64(v)/float64(of))) }
	for _, r := range rs {
		if r.err != nil {
			fmt.Fprintf(&b, "| %s | failed: %s | | | | | | | | | | |\n", r.name, strings.ReplaceAll(r.err.Error(), "|", `\|`))
			continue
		}
		persist := r.params * 4 * 3
		act := r.kept - r.copies
		timeX, peakPct, actPct := "1.00", "0", "0"
		if base != nil && r.name != base.name {
			timeX = fmt.Sprintf("%.2f", r.stepMs/base.stepMs)
			peakPct = pct(r.peak, base.peak)
			actPct = pct(act, base.kept-base.copies)
		}
		actS := fmt.Sprintf("%.1f", mib(act))
		if r.kept < 0 || (base != nil && base.kept < 0) {
			actS, actPct = "n/a", "n/a"
		}
		inUse := "n/a"
		if r.maxInUse > 0 {
			inUse = fmt.Sprintf("%.1f", mib(r.maxInUse))
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %.1f | %s | %.1f | %.1f | %s | %s | %.1f | %s |\n",
			r.name, r.params, r.stepMs, timeX, mib(r.peak), peakPct, mib(persist), mib(r.copies), actS, actPct, mib(persist+r.peak), inUse)
	}
	return b.String()
}

// holdersReport lists, per configuration, the op kinds that held the most
// at the end of the forward pass: where the activations kept are.
func holdersReport(rs []result) string {
	var b strings.Builder
	b.WriteString("Largest holders at the end of the forward pass (op type and dtype of the allocating kernels, MiB):\n\n")
	for _, r := range rs {
		if r.err != nil || len(r.holders) == 0 {
			continue
		}
		parts := make([]string, len(r.holders))
		for i, h := range r.holders {
			parts[i] = fmt.Sprintf("%s %.1f", h.kind, mib(h.bytes))
		}
		fmt.Fprintf(&b, "- %s: %s\n", r.name, strings.Join(parts, ", "))
	}
	return b.String()
}

func kernelReport(rs []result) string {
	var b strings.Builder
	b.WriteString("MatMul-family kernels executed in one traced train step (partition graphs; op[attr T] x count):\n\n")
	for _, r := range rs {
		if r.err != nil || r.remat {
			continue
		}
		keys := make([]string, 0, len(r.kernels))
		for k := range r.kernels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s x%d", k, r.kernels[k])
		}
		fmt.Fprintf(&b, "- %s: %s\n", r.name, strings.Join(parts, ", "))
	}
	return b.String()
}
