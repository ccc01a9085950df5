package keraslike

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gotf/gotf/internal/h5"
)

// Loading Keras files: LoadKerasModel tells a .keras archive
// (kerasfile_zip.go) from a legacy .h5 full model, read here; both hold
// the model's config (config_read.go) and its weights (h5weights.go,
// h5weights_legacy.go).

// LoadOptions are LoadKerasModel's options.
type LoadOptions struct {
	// CustomLayers adds Go implementations of layer classes for this load
	// only, over RegisterLayer's (Keras' custom_objects).
	CustomLayers map[string]LayerFactory
	// MaxParams bounds the number of scalars in the model's weights that a
	// file may declare (checked once the graph is built, before any weight
	// is allocated); 0 means 1<<30.
	MaxParams int64
}

// LoadKerasModel builds a model from a Keras file: a Keras 3 .keras archive
// (config.json and model.weights.h5) or a legacy .h5 full model
// (model.save("x.h5") or SaveKeras("x.h5"): the root attribute
// model_config and the model_weights group), or the directory of a Keras 3
// model saved unzipped (model.save("dir", zipped=False): the archive's
// members as files). The file's first bytes tell which, whatever its name
// says, so a renamed file is read as what it is.
// The model is a Sequential or a single-input,
// single-output functional model of the classes keraslike implements
// (InputLayer, Dense, Embedding, LayerNormalization, MultiHeadAttention,
// Dropout, Activation, Add, Flatten, GlobalAveragePooling1D,
// GlobalMaxPooling1D) and of classes registered with RegisterLayer or
// opts.CustomLayers (keraslike's TransformerBlock and PositionalEmbedding
// are registered).
//
// Loading never runs code from the file: a Lambda layer, an unknown or
// custom class without a Go implementation, or a serialized function
// (e.g. a custom activation) is an error naming the layer and its class.
// A file loads with its meaning intact or not at all: an option of a known
// class that keraslike does not implement (a regularizer, a constraint,
// rms_scaling, a key it does not know) is an error naming the layer and
// the option, never ignored; initializers are accepted, since the file's
// weights replace them. A layer saved frozen (trainable: false) loads
// frozen (Base.SetTrainable). The compile config (optimizer, loss) is not
// read: compile the loaded model in Go.
//
// Sizes from the file are checked before they are used: the config's
// JSON (64 MiB, 2^21 values, nesting 64, strings 64 KiB), names (1 KiB),
// the number of layers (8192) and of calls (32768), dimensions (2^24),
// weights whose shape the config alone fixes (2^31 elements), the whole
// model (opts.MaxParams) and the weights member of a .keras archive; then
// every weight's dtype and shape against its layer's. Errors quote at most
// 200 bytes of any value from the file.
func LoadKerasModel(path string, opts LoadOptions) (*Model, error) {
	m, err := loadKerasModel(path, opts)
	if err != nil {
		return nil, fmt.Errorf("loading Keras model %s: %w", path, err)
	}
	return m, nil
}

func loadKerasModel(path string, opts LoadOptions) (*Model, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return loadKerasDir(path, opts)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var sig [8]byte
	_, err = io.ReadFull(f, sig[:])
	f.Close()
	if err != nil {
		return nil, errors.New("too short to be a .keras or .h5 file")
	}
	switch {
	case bytes.HasPrefix(sig[:], []byte("PK\x03\x04")):
		return loadKerasZip(path, opts)
	case string(sig[:]) == "\x89HDF\r\n\x1a\n":
		return loadLegacyModel(path, opts)
	}
	return nil, errors.New("neither a .keras archive (zip) nor an HDF5 .h5 file")
}

func loadLegacyModel(path string, opts LoadOptions) (*Model, error) {
	f, err := h5.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !f.Root().HasAttr("model_config") {
		return nil, errors.New("no model_config attribute: a weights-only file; build the model in Go and call LoadWeightsLegacyH5 or LoadWeightsH5")
	}
	cfgJSON, err := f.Root().StringAttr("model_config")
	if err != nil {
		return nil, err
	}
	m, err := modelFromJSON([]byte(cfgJSON), opts, true)
	if err != nil {
		return nil, err
	}
	if err := m.assignFromH5(f, m.readLegacyWeights); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}
