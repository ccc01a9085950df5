package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/gotf/gotf/internal/excerpt"
	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/keraslike"
)

// kerasInfo is what inspect shows of a .keras archive or a legacy .h5
// full model: the model as keraslike loads it.
type kerasInfo struct {
	Format  string       `json:"format"`
	Path    string       `json:"path"`
	Model   string       `json:"model"`
	Summary string       `json:"summary"`
	Params  int64        `json:"params"`
	Weights []weightInfo `json:"weights"`
}

type weightInfo struct {
	// Path is Keras' variable path (dense/kernel) for a model, the HDF5
	// dataset path (/layers/dense/vars/0) for a weights file.
	Path  string  `json:"path"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	// Shard is the file holding it, for sharded weights.
	Shard string `json:"shard,omitempty"`
}

func readKerasInfo(path string) (*kerasInfo, error) {
	m, err := keraslike.LoadKerasModel(path, keraslike.LoadOptions{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	info := &kerasInfo{Format: fmtKeras, Path: path, Model: m.Name(), Summary: m.Summary(), Params: m.CountParams(), Weights: []weightInfo{}}
	for _, w := range m.Weights() {
		info.Weights = append(info.Weights, weightInfo{Path: w.Path, DType: w.DType().String(), Shape: w.Shape()})
	}
	return info, nil
}

func (k *kerasInfo) writeText(w io.Writer) {
	fmt.Fprint(w, k.Summary)
	fmt.Fprintf(w, "\nWeights (%d):\n", len(k.Weights))
	writeWeights(w, k.Weights)
}

func writeWeights(w io.Writer, ws []weightInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, x := range ws {
		if x.Shard != "" {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", x.Path, x.DType, pyList(x.Shape), x.Shard)
		} else {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", x.Path, x.DType, pyList(x.Shape))
		}
	}
	tw.Flush()
}

// weightsInfo is what inspect shows of a weights-only file: every dataset,
// read without building a model (the file does not say which model).
type weightsInfo struct {
	Format  string       `json:"format"`
	Path    string       `json:"path"`
	Shards  []string     `json:"shards,omitempty"`
	Weights []weightInfo `json:"weights"`
}

// Bounds on what a weights file can make inspect walk: Keras models have
// a few levels of groups and far fewer datasets.
const (
	maxWeightDepth    = 64
	maxWeightDatasets = 1 << 20
	maxShardIndex     = 64 << 20
)

func readWeightsInfo(path string, sharded bool) (*weightsInfo, error) {
	info := &weightsInfo{Format: fmtWeightsH5, Path: path, Weights: []weightInfo{}}
	if !sharded {
		if err := walkWeights(path, "", info); err != nil {
			return nil, err
		}
		return info, nil
	}
	info.Format = fmtWeightsSet
	shards, err := shardNames(path)
	if err != nil {
		return nil, err
	}
	info.Shards = shards
	for _, s := range shards {
		if err := walkWeights(filepath.Join(filepath.Dir(path), s), s, info); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// shardNames reads a Keras sharded-weights index and returns the shard
// files its weight_map names, each once, sorted.
func shardNames(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxShardIndex {
		return nil, fmt.Errorf("%s: %d bytes, more than a sharded-weights index (%d)", path, fi.Size(), maxShardIndex)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var index struct {
		WeightMap map[string]json.RawMessage `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("%s: malformed JSON: %v (it starts %s)", path, err, excerpt.Quote(string(data[:min(len(data), 40)])))
	}
	if index.WeightMap == nil {
		return nil, fmt.Errorf("%s: no \"weight_map\": not a Keras sharded-weights index", path)
	}
	set := map[string]bool{}
	for key, raw := range index.WeightMap {
		var one string
		var many []string
		if json.Unmarshal(raw, &one) == nil {
			many = []string{one}
		} else if err := json.Unmarshal(raw, &many); err != nil {
			return nil, fmt.Errorf("%s: weight_map[%s] is %s, want a shard name or a list of them", path, excerpt.Quote(key), excerpt.Of(raw))
		}
		for _, s := range many {
			// A shard sits beside its index; a path elsewhere is refused
			// rather than followed.
			if s == "" || filepath.Base(s) != s {
				return nil, fmt.Errorf("%s: weight_map[%s] names %s, not a file beside the index", path, excerpt.Quote(key), excerpt.Quote(s))
			}
			set[s] = true
		}
	}
	names := make([]string, 0, len(set))
	for s := range set {
		names = append(names, s)
	}
	sort.Strings(names)
	return names, nil
}

func walkWeights(path, shard string, info *weightsInfo) error {
	f, err := h5.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	var walk func(g *h5.Group, depth int) error
	walk = func(g *h5.Group, depth int) error {
		if depth > maxWeightDepth {
			return fmt.Errorf("%s: %s: groups nested over %d deep", path, g.Path(), maxWeightDepth)
		}
		ms, err := g.Members()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, m := range ms {
			switch m.Kind {
			case h5.GroupKind:
				sub, err := g.Group(m.Name)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				if err := walk(sub, depth+1); err != nil {
					return err
				}
			case h5.DatasetKind:
				if len(info.Weights) >= maxWeightDatasets {
					return errors.New(path + ": too many datasets for a weights file")
				}
				st, err := g.Stat(m.Name)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				p := g.Path() + "/" + m.Name
				if g.Path() == "/" {
					p = "/" + m.Name
				}
				shape := st.Shape
				if shape == nil {
					shape = []int64{}
				}
				info.Weights = append(info.Weights, weightInfo{Path: p, DType: st.DType.String(), Shape: shape, Shard: shard})
			}
		}
		return nil
	}
	return walk(f.Root(), 0)
}

func (k *weightsInfo) writeText(w io.Writer) {
	fmt.Fprintf(w, "Weights file %s", k.Path)
	if k.Shards != nil {
		fmt.Fprintf(w, " (%d shards)", len(k.Shards))
	}
	fmt.Fprintf(w, ": %d weights\n", len(k.Weights))
	writeWeights(w, k.Weights)
}
