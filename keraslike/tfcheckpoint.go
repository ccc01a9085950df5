package keraslike

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
)

// objectPath matches the variables of a Keras 3 model in an object-graph
// checkpoint written by tf.train.Checkpoint(model=model): the model's
// operations (its layers, the InputLayer being 0) by index, then the
// attribute path inside the layer.
var objectPath = regexp.MustCompile(`^(?:.*/)?_operations/(\d+)/(.+)/\.ATTRIBUTES/VARIABLE_VALUE$`)

// kerasAttr maps the attribute names Keras layers keep their weights and
// sublayers under to the names in Keras weight paths.
var kerasAttr = map[string]string{
	"_kernel": "kernel", "_embeddings": "embeddings", "_query_dense": "query", "_key_dense": "key",
	"_value_dense": "value", "_output_dense": "attention_output",
}

// MapObjectCheckpoint maps the variables of a Keras 3 object-graph
// checkpoint (keys such as "model/_operations/2/_query_dense/_kernel/
// .ATTRIBUTES/VARIABLE_VALUE") onto the model's weights: it returns
// checkpoint key -> weight. Keras numbers a model's operations (the input,
// layers and ops such as an addition); the operations that own variables,
// in that order, are matched with the model's layers that have weights, in
// order, and within a layer by attribute path ("_kernel" is "kernel",
// "_query_dense" is "query" ...). Keys that are not model variables (the
// optimizer's, the object graph) are left out; a weight or key left
// unmatched is an error naming it.
func (m *Model) MapObjectCheckpoint(keys []string) (map[string]*Weight, error) {
	if err := m.Build(); err != nil {
		return nil, err
	}
	byOp := map[int][]string{}
	var ops []int
	for _, key := range keys {
		sub := objectPath.FindStringSubmatch(key)
		if sub == nil || strings.Contains(key, "optimizer") {
			continue
		}
		i, _ := strconv.Atoi(sub[1])
		if _, seen := byOp[i]; !seen {
			ops = append(ops, i)
		}
		byOp[i] = append(byOp[i], key)
	}
	sort.Ints(ops)
	var layers []Layer
	for _, l := range m.layers {
		if len(l.Weights()) > 0 {
			layers = append(layers, l)
		}
	}
	if len(ops) != len(layers) {
		return nil, fmt.Errorf("the checkpoint has variables for %d layers, the model has %d layers with weights", len(ops), len(layers))
	}
	out := map[string]*Weight{}
	for n, op := range ops {
		layer := layers[n]
		if len(byOp[op]) != len(layer.Weights()) {
			return nil, fmt.Errorf("checkpoint operation %d has %d variables, layer %q has %d weights", op, len(byOp[op]), layer.Name(), len(layer.Weights()))
		}
		for _, key := range byOp[op] {
			sub := objectPath.FindStringSubmatch(key)
			parts := strings.Split(sub[2], "/")
			for j, p := range parts {
				if name, ok := kerasAttr[p]; ok {
					parts[j] = name
				}
			}
			suffix := "/" + strings.Join(parts, "/")
			var w *Weight
			for _, cand := range layer.Weights() {
				if strings.HasSuffix(cand.Path, suffix) {
					w = cand
					break
				}
			}
			if w == nil {
				return nil, fmt.Errorf("checkpoint key %q: layer %q has no weight %q", key, layer.Name(), strings.TrimPrefix(suffix, "/"))
			}
			out[key] = w
		}
	}
	return out, nil
}

// LoadObjectCheckpoint restores the model's weights from a Keras 3
// object-graph checkpoint written by Python's tf.train.Checkpoint(model=m)
// (see MapObjectCheckpoint), checking every shape and dtype first.
func (m *Model) LoadObjectCheckpoint(prefix string) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		return err
	}
	defer r.Close()
	mapping, err := m.MapObjectCheckpoint(r.Names())
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", prefix, err)
	}
	keys := slices.Sorted(maps.Keys(mapping))
	vars := make([]*tfgo.Variable, len(keys))
	for i, key := range keys {
		vars[i] = mapping[key].Variable
	}
	return m.restore(sess, r, keys, vars)
}
