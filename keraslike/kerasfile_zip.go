package keraslike

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gotf/gotf/internal/atomicfile"
)

// The Keras 3 .keras archive: a zip of config.json (config_read.go,
// config_write.go), metadata.json and model.weights.h5 (h5weights.go).

// Limits on the members of a .keras archive.
const (
	maxConfigBytes = 64 << 20
	// A member that declares more than this and more than zipMaxExpansion
	// times what it stores is refused as a decompression bomb (as Keras does).
	zipBombFloor    = 1 << 28
	zipMaxExpansion = 100
)

func loadKerasZip(path string, opts LoadOptions) (*Model, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("not a readable zip archive: %w", err)
	}
	defer zr.Close()
	members := map[string]*zip.File{}
	for _, zf := range zr.File {
		if zf.UncompressedSize64 > zipBombFloor && zf.UncompressedSize64 > zipMaxExpansion*zf.CompressedSize64 {
			return nil, fmt.Errorf("archive member %s declares %d bytes but stores %d: refused as a decompression bomb", quoted(zf.Name), zf.UncompressedSize64, zf.CompressedSize64)
		}
		members[zf.Name] = zf
	}
	cf := members["config.json"]
	if cf == nil {
		return nil, errors.New("the archive has no config.json")
	}
	if cf.UncompressedSize64 > maxConfigBytes {
		return nil, fmt.Errorf("config.json declares %d bytes, more than the limit %d", cf.UncompressedSize64, maxConfigBytes)
	}
	raw, err := readMember(cf, maxConfigBytes)
	if err != nil {
		return nil, err
	}
	m, err := modelFromJSON(raw, opts, false)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	wf := members["model.weights.h5"]
	if wf == nil {
		if members["model.weights.json"] != nil {
			return nil, errors.New("sharded weights (model.weights.json) are not supported")
		}
		return nil, errors.New("the archive has no model.weights.h5")
	}
	// The model's weights in the widest dtype, with up to four optimizer
	// slots each, and room for HDF5's metadata: a larger member is not
	// this model's weights file, and is not copied to disk.
	if limit := 5*8*uint64(m.CountParams()) + 64<<20; wf.UncompressedSize64 > limit {
		return nil, fmt.Errorf("model.weights.h5 declares %d bytes, more than the %d a model of %d parameters needs", wf.UncompressedSize64, limit, m.CountParams())
	}
	tmp, err := os.CreateTemp("", "gotf-keras-*.weights.h5")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	rc, err := wf.Open()
	if err != nil {
		tmp.Close()
		return nil, fmt.Errorf("model.weights.h5: %w", err)
	}
	n, err := io.Copy(tmp, io.LimitReader(rc, int64(wf.UncompressedSize64)+1))
	rc.Close()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("extracting model.weights.h5: %w", err)
	}
	if uint64(n) != wf.UncompressedSize64 {
		return nil, fmt.Errorf("model.weights.h5 holds %d bytes, its header says %d", n, wf.UncompressedSize64)
	}
	if err := m.loadKeras3Weights(tmp.Name()); err != nil {
		return nil, fmt.Errorf("model.weights.h5: %w", err)
	}
	ok = true
	return m, nil
}

// loadKerasDir reads the directory model.save(dir, zipped=False) writes:
// config.json and model.weights.h5 as files.
func loadKerasDir(dir string, opts LoadOptions) (*Model, error) {
	cf, err := os.Open(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("a directory without config.json: neither a .keras archive, an HDF5 .h5 file nor a Keras model saved unzipped")
	}
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(cf, maxConfigBytes+1))
	cf.Close()
	if err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	if len(raw) > maxConfigBytes {
		return nil, fmt.Errorf("config.json is larger than the limit of %d bytes", maxConfigBytes)
	}
	m, err := modelFromJSON(raw, opts, false)
	if err != nil {
		return nil, err
	}
	wp := filepath.Join(dir, "model.weights.h5")
	if _, err := os.Stat(wp); errors.Is(err, os.ErrNotExist) {
		m.Close()
		if _, err := os.Stat(filepath.Join(dir, "model.weights.json")); err == nil {
			return nil, errors.New("sharded weights (model.weights.json) are not supported")
		}
		return nil, errors.New("the directory has no model.weights.h5")
	}
	if err := m.loadKeras3Weights(wp); err != nil {
		m.Close()
		return nil, fmt.Errorf("model.weights.h5: %w", err)
	}
	return m, nil
}

func readMember(zf *zip.File, limit int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than the limit of %d bytes", zf.Name, limit)
	}
	return b, nil
}

// SaveKeras writes the model as Keras' model.save(path) does, in the
// format path's extension names: ".keras" a Keras 3 archive (config.json,
// metadata.json, model.weights.h5), ".h5" or ".hdf5" a legacy HDF5 full
// model (the root attribute model_config and the weights under
// model_weights); keras.models.load_model opens either. Any other path is
// an error, as in Keras, ".weights.h5" included: that name is a weights
// file's (SaveWeightsH5), and a model saved under it would be mislabelled.
//
// The model is a Sequential model, or a functional one from NewFunctional
// or LoadKerasModel. Layers whose Keras twin is not a built-in Keras class
// (TransformerBlock, PositionalEmbedding, classes registered with
// RegisterLayer) are written with module "gotf.keraslike" and their class
// name as registered_name, so Python needs the class in custom_objects:
//
//	keras.models.load_model("m.keras", custom_objects={"TransformerBlock": TransformerBlock})
//
// A model from NewModel (a Go forward function) has no known connectivity:
// build it with Input/Apply/NewFunctional, or save its weights only
// (SaveWeightsH5). Neither format holds the compile config: the model
// loads uncompiled. The file appears complete or not at all: a save killed
// half-way leaves the previous file in place, and its temporary directory
// (".<name>.tmp-<random>" beside it) is removed by the next save.
func (m *Model) SaveKeras(path string) error {
	if err := m.usable(); err != nil {
		return err
	}
	write, err := m.kerasWriter(path)
	if err == nil {
		err = write(path)
	}
	if err != nil {
		return fmt.Errorf("saving %q as %s: %w", m.name, path, err)
	}
	return nil
}

// kerasWriter picks the format of a model file by path's extension, as
// keras.saving.save_model does.
func (m *Model) kerasWriter(path string) (func(string) error, error) {
	switch {
	case strings.HasSuffix(path, ".keras"):
		return m.saveKeras, nil
	case strings.HasSuffix(path, ".weights.h5"):
		return nil, errors.New("a .weights.h5 path names a weights file: save the weights with SaveWeightsH5, or the model under a .keras (or legacy .h5) path")
	case strings.HasSuffix(path, ".h5"), strings.HasSuffix(path, ".hdf5"):
		return func(p string) error { return atomicfile.WriteFile(p, m.saveLegacyModel) }, nil
	}
	return nil, errors.New("a Keras model file ends in .keras (the Keras 3 format) or .h5/.hdf5 (legacy HDF5); for a SavedModel use Export, for a TensorFlow checkpoint SaveCheckpoint")
}

// saveKeras writes the .keras archive at path.
func (m *Model) saveKeras(path string) error {
	if _, err := m.session(); err != nil {
		return err
	}
	conf, err := m.kerasConfig()
	if err != nil {
		return err
	}
	confJSON, err := json.Marshal(conf)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	meta, _ := json.Marshal(map[string]any{
		"keras_version": kerasFormatVersion,
		"date_saved":    time.Now().Format("2006-01-02@15:04:05"),
		"producer":      "gotf keraslike",
	})
	// The weights and the archive are written in a temporary directory
	// next to path, which a killed save leaves for the next one to remove.
	return atomicfile.WriteFile(path, func(zpath string) error {
		wpath := filepath.Join(filepath.Dir(zpath), "model.weights.h5")
		if err := m.writeKeras3Weights(wpath); err != nil {
			return err
		}
		zf, err := os.OpenFile(zpath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		zw := zip.NewWriter(zf)
		add := func(name string, method uint16, r io.Reader) error {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: time.Now()})
			if err != nil {
				return err
			}
			_, err = io.Copy(w, r)
			return err
		}
		err = add("metadata.json", zip.Deflate, bytes.NewReader(meta))
		if err == nil {
			err = add("config.json", zip.Deflate, bytes.NewReader(confJSON))
		}
		if err == nil {
			var wf *os.File
			if wf, err = os.Open(wpath); err == nil {
				err = add("model.weights.h5", zip.Store, wf)
				wf.Close()
			}
		}
		if err == nil {
			err = zw.Close()
		}
		if cerr := zf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing the archive: %w", err)
		}
		return nil
	})
}
