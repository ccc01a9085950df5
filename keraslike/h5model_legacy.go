package keraslike

import (
	"encoding/json"
	"fmt"

	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/tfgo"
)

// Legacy Keras' HDF5 full model (model.save("x.h5"); keras.src.legacy.
// saving.legacy_h5_format.save_model_to_hdf5): the root attributes
// model_config (the model's config as JSON), keras_version and backend,
// and the weights in the legacy layout (h5weights_legacy.go) in the group
// model_weights. Reading is in kerasfile_load.go.

// legacyModelConfig is the model's config as Keras writes it under its
// legacy option scope: the model and each of its layers as a bare
// {"class_name", "config"} (plus a functional layer's name and inbound
// nodes), without the module, registered_name and build_config of a
// .keras config; objects nested in a layer's config (dtype policies,
// initializers) keep their Keras 3 form, as Keras' get_config gives them.
func legacyModelConfig(conf map[string]any) map[string]any {
	inner, _ := conf["config"].(map[string]any)
	out := map[string]any{}
	for k, v := range inner {
		out[k] = v
	}
	if layers, ok := inner["layers"].([]any); ok {
		legacy := make([]any, len(layers))
		for i, l := range layers {
			e, ok := l.(map[string]any)
			if !ok {
				legacy[i] = l
				continue
			}
			le := map[string]any{}
			for k, v := range e {
				switch k {
				case "module", "registered_name", "build_config", "compile_config":
				default:
					le[k] = v
				}
			}
			legacy[i] = le
		}
		out["layers"] = legacy
	}
	return map[string]any{"class_name": conf["class_name"], "config": out}
}

// saveLegacyModel writes the legacy HDF5 full model to a new file at path
// (inside a temporary directory: see SaveKeras). Like a .keras archive
// from SaveKeras, it holds no training_config: Keras loads it uncompiled.
func (m *Model) saveLegacyModel(path string) error {
	if _, err := m.session(); err != nil {
		return err
	}
	conf, err := m.kerasConfig()
	if err != nil {
		return err
	}
	confJSON, err := json.Marshal(legacyModelConfig(conf))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return m.createH5(path, func(root *h5.Group, vals map[*Weight]*tfgo.Tensor) error {
		for _, a := range [][2]string{{"backend", "tensorflow"}, {"keras_version", kerasFormatVersion}, {"model_config", string(confJSON)}} {
			if err := root.SetStringAttr(a[0], a[1]); err != nil {
				return err
			}
		}
		g, err := root.CreateGroup("model_weights")
		if err != nil {
			return err
		}
		defer g.Close()
		return m.writeLegacyWeights(g, vals)
	})
}
