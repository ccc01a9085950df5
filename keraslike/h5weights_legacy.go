package keraslike

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gotf/gotf/internal/atomicfile"
	ex "github.com/gotf/gotf/internal/excerpt"
	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/tfgo"
)

// Legacy Keras' HDF5 weight layout.
//
// Legacy Keras (.h5; keras.src.legacy.saving.legacy_h5_format) has, under
// model_weights for a full model or at the root for a weights file, the
// attribute layer_names and one group per layer, named as the layer, with
// the attribute weight_names (the variables' paths, "dense/kernel") and a
// dataset at each of those paths; weights are matched to layers in order.

// legacyLayerNames is the model's layers as legacy Keras lists them
// (model.layers: a functional model's InputLayer included).
func (m *Model) legacyLayerNames() []string {
	var names []string
	if !m.isSequential() {
		names = append(names, m.inputLayerName())
	}
	for _, l := range m.layers {
		names = append(names, l.Name())
	}
	return names
}

// SaveWeightsLegacyH5 writes the model's weights in legacy Keras' HDF5
// layout (Keras 2's model.save_weights("x.h5"), the model_weights part of
// model.save("x.h5")) at the file's root; Keras 3's model.load_weights
// ("x.h5") reads it into the model's twin. As with SaveWeightsH5, the file
// appears complete or not at all.
func (m *Model) SaveWeightsLegacyH5(path string) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, m.saveLegacy); err != nil {
		return fmt.Errorf("saving the weights of %q: %w", m.name, err)
	}
	return nil
}

// saveLegacy writes the legacy layout to a new file at path (inside a
// temporary directory: see SaveWeightsLegacyH5).
func (m *Model) saveLegacy(path string) error {
	return m.createH5(path, func(root *h5.Group, vals map[*Weight]*tfgo.Tensor) error {
		return m.writeLegacyWeights(root, vals)
	})
}

// createH5 creates an HDF5 file at path and has fill write the
// model's weights (vals) into it; a failed fill leaves no file.
func (m *Model) createH5(path string, fill func(root *h5.Group, vals map[*Weight]*tfgo.Tensor) error) error {
	if _, err := m.session(); err != nil {
		return err
	}
	vals, release, err := m.weightValues()
	if err != nil {
		return err
	}
	defer release()
	f, err := h5.Create(path)
	if err != nil {
		return err
	}
	if err := fill(f.Root(), vals); err != nil {
		f.Abort()
		return err
	}
	return f.Close()
}

// writeLegacyWeights writes the legacy layout into top: the file's root
// for a weights file, model_weights for a full model.
func (m *Model) writeLegacyWeights(top *h5.Group, vals map[*Weight]*tfgo.Tensor) error {
	if err := setLegacyStrings(top, "layer_names", m.legacyLayerNames()); err != nil {
		return err
	}
	if err := top.SetStringAttr("backend", "tensorflow"); err != nil {
		return err
	}
	if err := top.SetStringAttr("keras_version", kerasFormatVersion); err != nil {
		return err
	}
	groups := map[string][]*Weight{}
	for _, n := range m.legacyLayerNames() {
		groups[n] = nil
	}
	for _, l := range m.layers {
		groups[l.Name()] = l.Weights()
	}
	groups["top_level_model_weights"] = nil
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g, err := top.CreateGroup(n)
		if err != nil {
			return err
		}
		ws := groups[n]
		paths := make([]string, len(ws))
		for i, w := range ws {
			paths[i] = w.Path
		}
		err = setLegacyStrings(g, "weight_names", paths)
		for _, w := range ws {
			if err != nil {
				break
			}
			t := vals[w]
			var dt h5.DType
			if dt, err = h5DType(t.DataType()); err == nil {
				err = g.Write(w.Path, dt, t.Shape(), t.Data())
			}
		}
		g.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// LoadWeightsLegacyH5 reads legacy Keras HDF5 weights into the model: a
// full model saved with model.save("x.h5") (its model_weights group) or a
// weights file in that layout (SaveWeightsLegacyH5, Keras 2's
// save_weights). As Keras does, the file's layers that have weights are
// matched in order to the model's layers that have weights, and each
// layer's weights in order; counts, dtypes and shapes are checked before
// any weight changes, and errors name the layer and the weight.
func (m *Model) LoadWeightsLegacyH5(path string) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := m.loadLegacy(path); err != nil {
		return fmt.Errorf("loading weights into %q: %w", m.name, err)
	}
	return nil
}

func (m *Model) loadLegacy(path string) error {
	f, err := h5.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return m.assignFromH5(f, m.readLegacyWeights)
}

// hdf5HeaderLimit is the size of an attribute legacy Keras splits
// (HDF5_OBJECT_HEADER_LIMIT): an HDF5 object header message holds 64 KiB.
const hdf5HeaderLimit = 64512

// setLegacyStrings writes a list attribute as Keras'
// save_attributes_to_hdf5_group does: whole, or, when numpy's array of the
// UTF-8 strings (each as wide as the longest) is larger than
// hdf5HeaderLimit, in the fewest chunks name0, name1 ... that fit, sized as
// numpy's array_split sizes them.
func setLegacyStrings(g *h5.Group, name string, values []string) error {
	width := 0
	for _, v := range values {
		width = max(width, len(v))
	}
	if len(values)*width <= hdf5HeaderLimit {
		return g.SetStringsAttr(name, values)
	}
	perChunk := hdf5HeaderLimit / width
	if perChunk == 0 {
		return fmt.Errorf("attribute %s: a string of %d bytes is too long for an HDF5 attribute", name, width)
	}
	chunks := (len(values) + perChunk - 1) / perChunk
	start := 0
	for i := range chunks {
		n := len(values) / chunks
		if i < len(values)%chunks {
			n++
		}
		if err := g.SetStringsAttr(fmt.Sprint(name, i), values[start:start+n]); err != nil {
			return err
		}
		start += n
	}
	return nil
}

// legacyStrings reads a possibly chunked list attribute (name, or name0,
// name1 ... when Keras split it).
func legacyStrings(g *h5.Group, name string) ([]string, error) {
	if g.HasAttr(name) {
		return g.StringsAttr(name)
	}
	var out []string
	for i := 0; g.HasAttr(fmt.Sprint(name, i)); i++ {
		ss, err := g.StringsAttr(fmt.Sprint(name, i))
		if err != nil {
			return nil, err
		}
		out = append(out, ss...)
	}
	return out, nil
}

func (m *Model) readLegacyWeights(f *h5.File) ([]*Weight, []*tfgo.Tensor, error) {
	ws, vals, err := m.readLegacyLayers(f)
	return ws, vals, shortH5Path(err)
}

// shortH5Path bounds the object path an HDF5 error quotes: a legacy
// file's groups and datasets are named by the layer and weight names it
// lists, which can be as long as the file likes.
func shortH5Path(err error) error {
	if he, ok := err.(*h5.Error); ok && len(he.Path) > ex.Max {
		short := *he
		short.Path = excerpt(he.Path)
		return &short
	}
	return err
}

func (m *Model) readLegacyLayers(f *h5.File) ([]*Weight, []*tfgo.Tensor, error) {
	top := f.Root()
	if !top.HasAttr("layer_names") && !top.HasAttr("layer_names0") {
		if !top.Has("model_weights") {
			return nil, nil, fmt.Errorf("%s is not a legacy Keras HDF5 weights file (no layer_names attribute, no model_weights group)", f.Path())
		}
		g, err := top.Group("model_weights")
		if err != nil {
			return nil, nil, err
		}
		defer g.Close()
		top = g
	}
	names, err := legacyStrings(top, "layer_names")
	if err != nil {
		return nil, nil, err
	}
	type fileLayer struct {
		name    string
		weights []string
	}
	var fileLayers []fileLayer
	for _, n := range names {
		if n == "" || strings.Contains(n, "/") {
			return nil, nil, fmt.Errorf("%s: invalid layer name %s in layer_names", f.Path(), quoted(n))
		}
		g, err := top.Group(n)
		if err != nil {
			return nil, nil, err
		}
		wn, err := legacyStrings(g, "weight_names")
		g.Close()
		if err != nil {
			return nil, nil, err
		}
		if len(wn) > 0 {
			fileLayers = append(fileLayers, fileLayer{n, wn})
		}
	}
	var layers []Layer
	for _, l := range m.layers {
		if len(l.Weights()) > 0 {
			layers = append(layers, l)
		}
	}
	if len(layers) != len(fileLayers) {
		return nil, nil, fmt.Errorf("%s has weights for %d layers, the model has %d layers with weights", f.Path(), len(fileLayers), len(layers))
	}
	var ws []*Weight
	var vals []*tfgo.Tensor
	for i, l := range layers {
		fl := fileLayers[i]
		lw := l.Weights()
		if len(lw) != len(fl.weights) {
			return ws, vals, fmt.Errorf("layer %q (%s) has %d weights, %s has %d for its layer %s (%s)", l.Name(), l.ClassName(), len(lw), f.Path(), len(fl.weights), quoted(fl.name), excerpt(strings.Join(fl.weights, ", ")))
		}
		g, err := top.Group(fl.name)
		if err != nil {
			return ws, vals, err
		}
		for j, w := range lw {
			t, err := readWeight(g, fl.weights[j], w, l)
			if err != nil {
				g.Close()
				return ws, vals, err
			}
			ws, vals = append(ws, w), append(vals, t)
		}
		g.Close()
	}
	return ws, vals, nil
}
