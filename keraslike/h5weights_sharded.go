package keraslike

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/gotf/gotf/internal/atomicfile"
	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/tfgo"
)

// Keras 3's sharded weights (keras.src.saving.saving_lib.ShardedH5IOStore,
// model.save_weights("m.weights.json", max_shard_size=GB)).
//
// The layout inside the shards is Keras 3's .weights.h5 layout (see
// h5weights.go), spread over files "<base>_00000.weights.h5",
// "<base>_00001.weights.h5", ... beside a JSON index:
//
//	{"metadata": {"total_size": <bytes, a float>},
//	 "weight_map": {"/layers/dense/vars": <shard name, or a list of them>, ...}}
//
// where <base> is the index's name without ".json" and with every
// ".weights" removed. Keras fills one shard until the next value would
// take it past max_shard_size (GB of 2^30 bytes, a float); a variables
// group whose values straddle shards is listed under each of them. A
// group's entry is a string after its first value and becomes a list at
// its second: what Keras writes, which this writer reproduces byte for
// byte.

// SaveWeightsOptions are the options of SaveWeightsH5WithOptions.
type SaveWeightsOptions struct {
	// MaxShardSize is Keras' max_shard_size: when not zero, the weights
	// are written sharded, as a JSON index at the path (which must end in
	// "weights.json", as Keras requires) and shard files beside it, each
	// holding at most MaxShardSize GB (2^30 bytes) of weight values. A
	// single weight larger than that is an error, as in Keras. Zero writes
	// one .weights.h5 file.
	MaxShardSize float64
}

// maxShardIndexBytes bounds the JSON index a load reads: a model of a
// million variable groups needs about a hundredth of it.
const maxShardIndexBytes = 64 << 20

// collectAfterBytes is the weight size from which a load collects the Go
// copy of each value at once; a collection of the loader's small heap
// costs far less than reading that many bytes.
const collectAfterBytes = 8 << 20

// SaveWeightsH5WithOptions is SaveWeightsH5 with options: with
// MaxShardSize it writes Keras' sharded weights, which
// model.load_weights("m.weights.json") reads into the model's Keras twin.
// One weight at a time is read from the runtime and streamed into the
// current shard, so the memory a save takes beyond the model's is about
// one weight, not the model. The shards and the index are written in a
// temporary directory beside path, synced, and renamed into place when
// all are complete, the index last, after any previous index was removed.
// Keras' fixed shard names allow no atomic replacement of the set: a save
// killed while its shards are renamed (a few renames and a directory sync
// long) leaves no index; killed before, it leaves the previous save; never
// an index naming a mix of two saves' shards. Shards of a previous save
// that the new one does not name are left alone, as Keras leaves them.
func (m *Model) SaveWeightsH5WithOptions(path string, opts SaveWeightsOptions) error {
	if err := m.usable(); err != nil {
		return err
	}
	var err error
	switch s := opts.MaxShardSize; {
	case s == 0 && strings.HasSuffix(path, ".json"):
		err = fmt.Errorf("%s: a .json path holds sharded weights: give SaveWeightsOptions.MaxShardSize, or name a .weights.h5 file", path)
	case s == 0:
		err = atomicfile.WriteFile(path, m.writeKeras3Weights)
	case math.IsNaN(s) || math.IsInf(s, 0) || s < 0:
		err = fmt.Errorf("MaxShardSize %v: want a positive number of GB", s)
	case !strings.HasSuffix(path, "weights.json"):
		// Keras renames such a path to .json with a warning; a Go caller
		// would find its files under a name it did not give.
		err = fmt.Errorf("%s: sharded weights need a path ending in .weights.json", path)
	default:
		err = m.saveShardedWeights(path, s*(1<<30))
	}
	if err != nil {
		return fmt.Errorf("saving the weights of %q: %w", m.name, err)
	}
	return nil
}

// shardBase is the prefix of the shards of the index at path, as Keras
// derives it (pathlib's stem, then every ".weights" removed).
func shardBase(path string) string {
	name := filepath.Base(path)
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	return strings.ReplaceAll(name, ".weights", "")
}

// indexEntry is one variables group of the index: the shards holding its
// values, and whether Keras lists them (it does from the group's second
// value on).
type indexEntry struct {
	key    string
	shards []string
	list   bool
}

// shardWriter follows ShardedH5IOStore in write mode.
type shardWriter struct {
	dir, base string
	max       float64 // bytes
	next      int     // index of the next shard
	f         *h5.File
	name      string  // of f
	size      float64 // of f's values, as Keras counts it
	total     float64
	values    int
	entries   []*indexEntry
	byKey     map[string]*indexEntry
	written   []string // shard names, in order
}

func (w *shardWriter) open() error {
	w.name = fmt.Sprintf("%s_%05d.weights.h5", w.base, w.next)
	w.next++
	f, err := h5.Create(filepath.Join(w.dir, w.name))
	if err != nil {
		return err
	}
	w.f, w.size = f, 0
	w.written = append(w.written, w.name)
	return nil
}

func (w *shardWriter) closeShard() error {
	f := w.f
	w.f = nil
	return f.Close()
}

// group makes the variables group vp of a saveable named name in the
// current shard, as Keras' make() does for every saveable, values or not.
func (w *shardWriter) group(vp, name string) error {
	g, err := w.f.Root().CreateGroup(vp)
	if err != nil {
		return err
	}
	defer g.Close()
	return g.SetStringAttr("name", name)
}

// value writes one value of the group vp, starting a new shard first if
// the value would take the current one past the limit.
func (w *shardWriter) value(vp, key string, t *tfgo.Tensor, what string) error {
	dt, err := h5DType(t.DataType())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	size := float64(len(t.Data()))
	w.total += size
	if size > w.max {
		return fmt.Errorf("%s is %d bytes, more than MaxShardSize (%.0f bytes): raise MaxShardSize", what, len(t.Data()), w.max)
	}
	w.size += size
	if w.size > w.max {
		if err := w.closeShard(); err != nil {
			return err
		}
		if err := w.open(); err != nil {
			return err
		}
		w.size = size
	}
	// A group continued in a new shard has no name attribute there: Keras
	// creates it on its first value, without the saveable's metadata.
	if err := w.f.Root().Write(vp+"/"+key, dt, t.Shape(), t.Data()); err != nil {
		return err
	}
	w.values++
	k := "/" + vp
	e := w.byKey[k]
	if e == nil {
		e = &indexEntry{key: k, shards: []string{w.name}}
		w.byKey[k] = e
		w.entries = append(w.entries, e)
		return nil
	}
	e.list = true
	if e.shards[len(e.shards)-1] != w.name {
		e.shards = append(e.shards, w.name)
	}
	return nil
}

// saveShardedWeights writes the index at path and its shards beside it.
func (m *Model) saveShardedWeights(path string, maxBytes float64) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	tmp, err := atomicfile.NewTemp(path)
	if err != nil {
		return err
	}
	defer tmp.Remove()
	w := &shardWriter{dir: tmp.Dir, base: shardBase(path), max: maxBytes, byKey: map[string]*indexEntry{}}
	if err := w.open(); err != nil {
		return err
	}
	defer func() {
		if w.f != nil {
			w.f.Abort()
		}
	}()
	err = walkKeras(m.kerasTree(), func(vp string, n *kerasNode) error {
		if err := w.group(vp, n.name); err != nil {
			return err
		}
		for i, v := range n.vars {
			// One weight at a time: the runtime holds the model, Go only
			// the value being written.
			vals, err := sess.Run(nil, []tfgo.Output{v.Value()})
			if err != nil {
				return fmt.Errorf("reading weight %s: %w", v.Path, err)
			}
			err = w.value(vp, strconv.Itoa(i), vals[0], fmt.Sprintf("layer %q: weight %s", n.layer.Name(), v.Path))
			vals[0].Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := w.closeShard(); err != nil {
		return err
	}
	total := "0" // Keras' int 0 when nothing was added to it
	if w.values > 0 {
		total = pyFloat(w.total)
	}
	index := shardIndexJSON(total, w.entries)
	if err := os.WriteFile(filepath.Join(tmp.Dir, filepath.Base(path)), index, 0o644); err != nil {
		return err
	}
	return commitShards(tmp.Dir, path, w.written)
}

// commitShards moves a save's shards and then its index from the
// temporary directory tmp into place. Everything is synced first, and the
// old index is removed before the first shard replaces an old one: a kill
// in between (a few renames long) leaves no index rather than one naming
// shards of two different saves, which would load silently wrong weights.
func commitShards(tmp, path string, shards []string) error {
	index := filepath.Join(tmp, filepath.Base(path))
	for _, s := range shards {
		if err := atomicfile.SyncFile(filepath.Join(tmp, s)); err != nil {
			return err
		}
	}
	if err := atomicfile.SyncFile(index); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	for _, s := range shards {
		if err := os.Rename(filepath.Join(tmp, s), filepath.Join(dir, s)); err != nil {
			return fmt.Errorf("replacing %s: %w", filepath.Join(dir, s), err)
		}
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return err
	}
	if err := atomicfile.Commit(index, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

// pyFloat formats an integral float as Python's repr does ("1234.0",
// "1e+16"): Keras sums the byte counts as floats.
func pyFloat(v float64) string {
	if math.Abs(v) < 1e16 {
		return strconv.FormatFloat(v, 'f', 0, 64) + ".0"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// shardIndexJSON is the index as Python's json.dumps(indent=4) writes
// Keras' sharding_config: keys in insertion order, ASCII only.
func shardIndexJSON(total string, entries []*indexEntry) []byte {
	var b bytes.Buffer
	b.WriteString("{\n    \"metadata\": {\n        \"total_size\": " + total + "\n    },\n    \"weight_map\": {")
	for i, e := range entries {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n        " + pyJSONString(e.key) + ": ")
		if !e.list {
			b.WriteString(pyJSONString(e.shards[0]))
			continue
		}
		b.WriteString("[")
		for j, s := range e.shards {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n            " + pyJSONString(s))
		}
		b.WriteString("\n        ]")
	}
	if len(entries) > 0 {
		b.WriteString("\n    ")
	}
	b.WriteString("}\n}")
	return b.Bytes()
}

// pyJSONString quotes s as Python's json module does with ensure_ascii.
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r > 0x7e && r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// shardIndex is a parsed index: the shards of each variables group.
type shardIndex struct {
	path string
	dir  string
	// groups maps "/layers/dense/vars" to its shards' names.
	groups map[string][]string
}

// readShardIndex reads and checks the index at path. It comes from a
// file: every shard name must be a plain name of a file in the index's
// directory (no separators, no "..", nothing absolute).
func readShardIndex(path string) (*shardIndex, error) {
	// Stat before opening: opening a FIFO would block until a writer comes.
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxShardIndexBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxShardIndexBytes {
		return nil, fmt.Errorf("%s: an index of more than %d bytes", path, maxShardIndexBytes)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%s: not a sharded weights index (JSON): %v", path, err)
	}
	raw, ok := top["weight_map"]
	if !ok {
		return nil, fmt.Errorf("%s: no \"weight_map\": not a Keras sharded weights index", path)
	}
	var wm map[string]json.RawMessage
	if err := json.Unmarshal(raw, &wm); err != nil || wm == nil {
		return nil, fmt.Errorf("%s: \"weight_map\" is %s, want an object", path, excerpt(raw))
	}
	idx := &shardIndex{path: path, dir: filepath.Dir(path), groups: map[string][]string{}}
	for _, key := range slices.Sorted(maps.Keys(wm)) { // the first error of several is the same each time
		v := wm[key]
		var names []string
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			names = []string{one}
		} else if err := json.Unmarshal(v, &names); err != nil || len(names) == 0 {
			return nil, fmt.Errorf("%s: weight_map[%s] is %s, want a shard name or a list of them", path, quoted(key), excerpt(v))
		}
		seen := map[string]bool{}
		var uniq []string
		for _, n := range names {
			if err := checkShardName(n); err != nil {
				return nil, fmt.Errorf("%s: weight_map[%s]: shard %s: %v", path, quoted(key), quoted(n), err)
			}
			if !seen[n] {
				seen[n] = true
				uniq = append(uniq, n)
			}
		}
		idx.groups[key] = uniq
	}
	return idx, nil
}

// checkShardName refuses a shard name that is not a plain file name. A
// shard that is a symbolic link in the index's directory is followed: the
// directory's owner made it (Hugging Face's cache links each file to a
// blob), the index only names it.
func checkShardName(n string) error {
	switch {
	case n == "" || n == "." || n == "..":
		return errors.New("not a file name")
	case len(n) > 255:
		return errors.New("a name longer than 255 bytes")
	case strings.ContainsAny(n, "/\\\x00") || filepath.IsAbs(n) || filepath.VolumeName(n) != "" || filepath.Base(n) != n:
		return errors.New("not a plain file name: only files in the index's directory are read")
	}
	return nil
}

// shardFiles opens the shards of an index as they are needed, keeping
// at most two open (a group straddling two shards is read with both
// open, and the model's walk visits the shards in order).
type shardFiles struct {
	idx  *shardIndex
	open []*openShard
}

type openShard struct {
	name string
	f    *h5.File
}

func (s *shardFiles) get(name, key string) (*h5.File, error) {
	for _, o := range s.open {
		if o.name == name {
			return o.f, nil
		}
	}
	if len(s.open) == 2 {
		s.open[0].f.Close()
		s.open = s.open[1:]
	}
	f, err := h5.Open(filepath.Join(s.idx.dir, name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: shard %s (of %s) is missing", s.idx.path, quoted(name), quoted(key))
		}
		return nil, fmt.Errorf("%s: shard %s (of %s): %w", s.idx.path, quoted(name), quoted(key), err)
	}
	s.open = append(s.open, &openShard{name, f})
	return f, nil
}

func (s *shardFiles) close() {
	for _, o := range s.open {
		o.f.Close()
	}
	s.open = nil
}

// shardedWeight is where one weight's value is: dataset ds of a shard.
type shardedWeight struct {
	w     *Weight
	layer Layer
	shard string
	key   string // the index's key of its group
	ds    string // "layers/dense/vars/0"
}

// loadShardedWeights reads the index at path and its shards into the
// model: first every weight is found and checked (dtype, shape) without
// reading values, so that a file that does not fit the model changes no
// weight; then each value is read and assigned in turn, one at a time.
func (m *Model) loadShardedWeights(path string) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	idx, err := readShardIndex(path)
	if err != nil {
		return err
	}
	files := &shardFiles{idx: idx}
	defer files.close()
	plan, err := m.planShardedLoad(idx, files)
	if err != nil {
		return err
	}
	for _, p := range plan {
		f, err := files.get(p.shard, p.key)
		if err != nil {
			return err
		}
		t, err := readWeight(f.Root(), p.ds, p.w, p.layer)
		if err != nil {
			return err
		}
		// The value read into Go is garbage once the tensor holds a
		// copy: collected now, a large one does not outlive the next read
		// (measured with 64 MiB weights: the load's peak RSS rose by one
		// weight instead of three).
		if weightSize(p.w)*int64(p.w.DType().Size()) >= collectAfterBytes {
			runtime.GC()
		}
		err = m.assign(sess, []*Weight{p.w}, []*tfgo.Tensor{t})
		t.Close()
		if err != nil {
			return fmt.Errorf("assigning weight %s: %w", p.w.Path, err)
		}
	}
	return nil
}

// planShardedLoad finds each weight of the model's Keras tree in the
// shards the index names for its group, checking counts, dtypes and
// shapes, and refuses index entries the model has no group for (but the
// optimizer's, which Keras saves with a compiled model's weights and a
// weights load leaves alone).
func (m *Model) planShardedLoad(idx *shardIndex, files *shardFiles) ([]shardedWeight, error) {
	var plan []shardedWeight
	used := map[string]bool{}
	err := walkKeras(m.kerasTree(), func(vp string, n *kerasNode) error {
		if len(n.vars) == 0 {
			return nil
		}
		key := "/" + vp
		shards, ok := idx.groups[key]
		if !ok {
			return fmt.Errorf("layer %q (%s): %s has no entry %q for its %d weights (%s ...)", n.layer.Name(), n.layer.ClassName(), idx.path, key, len(n.vars), n.vars[0].Path)
		}
		used[key] = true
		count := 0
		for _, s := range shards {
			f, err := files.get(s, key)
			if err != nil {
				return err
			}
			if !f.Root().Has(vp) {
				return fmt.Errorf("layer %q (%s): %s lists shard %s for %s, which has no such group", n.layer.Name(), n.layer.ClassName(), idx.path, quoted(s), key)
			}
			g, err := f.Root().Group(vp)
			if err != nil {
				return err
			}
			ms, err := g.Members()
			if err != nil {
				return err
			}
			count += len(ms)
		}
		if count != len(n.vars) {
			return fmt.Errorf("layer %q (%s): %s's shards hold %d variables under %s, the layer has %d (%s)", n.layer.Name(), n.layer.ClassName(), idx.path, count, key, len(n.vars), weightPaths(n.vars))
		}
		for i, w := range n.vars {
			p := shardedWeight{w: w, layer: n.layer, key: key, ds: vp + "/" + strconv.Itoa(i)}
			if err := p.find(idx, files, shards); err != nil {
				return err
			}
			plan = append(plan, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, key := range slices.Sorted(maps.Keys(idx.groups)) {
		if !used[key] && !strings.HasPrefix(key, "/optimizer/") {
			return nil, fmt.Errorf("%s lists weights for %s, which model %q does not have (a file of another model?)", idx.path, quoted(key), m.name)
		}
	}
	return plan, nil
}

// find sets p.shard to the first of shards that holds p's dataset, and
// checks its dtype and shape against p's weight.
func (p *shardedWeight) find(idx *shardIndex, files *shardFiles, shards []string) error {
	for _, s := range shards {
		f, err := files.get(s, p.key)
		if err != nil {
			return err
		}
		if !f.Root().Has(p.ds) {
			continue
		}
		info, err := f.Root().Stat(p.ds)
		if err != nil {
			return err
		}
		if cgoDType(info.DType) != p.w.DType() || !sameDims(info.Shape, p.w.Shape()) {
			return fmt.Errorf("%s: /%s in shard %s is %s%v, but layer %q (%s) has weight %s of %s%v", idx.path, p.ds, quoted(s), info.DType, info.Shape, p.layer.Name(), p.layer.ClassName(), p.w.Path, p.w.DType(), p.w.Shape())
		}
		p.shard = s
		return nil
	}
	return fmt.Errorf("layer %q (%s): %s: no shard of %s holds /%s (weight %s)", p.layer.Name(), p.layer.ClassName(), idx.path, p.key, p.ds, p.w.Path)
}
