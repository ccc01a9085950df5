package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/savedmodel"
	"github.com/spf13/cobra"
)

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect PATH",
		Short: "Show what a SavedModel, checkpoint or Keras file holds",
		Long: `Shows what a model file holds, telling the format from the path's contents:

  SavedModel directory   tag-sets, signatures (inputs and outputs with dtype,
                         shape and tensor name, method name) and concrete
                         functions, laid out as saved_model_cli show --all
                         prints them, so that the two can be diffed (the
                         ops, a Python set there, are sorted here, and a
                         function's call options are in the order of their
                         saved names, not of the names Python's loader
                         gives them); a TF
                         Serving base directory (1/, 2/...) means its latest
                         version
  checkpoint             every variable with dtype and shape, as
                         tf.train.list_variables lists them, and the object
                         graph of a tf.train.Checkpoint; PATH is a prefix
                         (train/ckpt-3), its .index file, or a directory with
                         a "checkpoint" state file (its latest checkpoint)
  .keras, .h5            the model summary (model.summary()) and its weights
  .weights.h5, legacy    every weight's path, dtype and shape
  weights-only .h5
  .weights.json          the same, over the shards of Keras sharded weights

--json prints the same content as one JSON document.`,
		Example: `  gotf inspect /models/half_plus_two/1
  diff <(gotf inspect export/1) <(saved_model_cli show --all --dir export/1)
  gotf inspect train/ckpt-3
  gotf inspect model.keras
  gotf inspect --json model.weights.json | jq '.weights[].path'`,
		Args: exactArgs(1, "one PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspect(cmd.OutOrStdout(), args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	return cmd
}

// The formats inspect tells apart.
const (
	fmtSavedModel = "saved_model"
	fmtCheckpoint = "checkpoint"
	fmtKeras      = "keras"        // a .keras archive or a legacy .h5 full model
	fmtWeightsH5  = "weights_h5"   // .weights.h5 or a legacy weights-only .h5
	fmtWeightsSet = "weights_json" // Keras sharded weights
)

// detect tells path's format from what is there, not from its name alone:
// a renamed .keras file is still a zip, a checkpoint prefix is no file.
// For a checkpoint it returns the prefix.
func detect(path string) (format, target string, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, ierr := os.Stat(savedmodel.IndexFilename(path)); ierr == nil {
			return fmtCheckpoint, path, nil
		}
		return "", "", notFoundError(fmt.Sprintf("%s: no such file or directory, nor a checkpoint prefix (no %s)",
			path, filepath.Base(savedmodel.IndexFilename(path))))
	}
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		for _, f := range []string{savedmodel.SavedModelFilename, savedmodel.SavedModelFilenameText, savedmodel.SavedModelFilenameChunked} {
			if _, err := os.Stat(filepath.Join(path, f)); err == nil {
				return fmtSavedModel, path, nil
			}
		}
		// A TF Serving base directory (base/1, base/2, ...) means its latest
		// version, the one a model server would load.
		if _, latest, err := savedmodel.LatestVersion(path); err == nil {
			if format, _, err := detect(latest); err == nil && format == fmtSavedModel {
				return fmtSavedModel, latest, nil
			}
		}
		if _, err := os.Stat(filepath.Join(path, "checkpoint")); err == nil {
			prefix, err := savedmodel.LatestCheckpoint(path)
			if err != nil {
				return "", "", err
			}
			return fmtCheckpoint, prefix, nil
		}
		return "", "", fmt.Errorf("%s: a directory with neither a saved_model.pb nor a \"checkpoint\" state file", path)
	}
	if strings.HasSuffix(path, ".index") {
		return fmtCheckpoint, strings.TrimSuffix(path, ".index"), nil
	}
	if strings.HasSuffix(path, ".json") {
		return fmtWeightsSet, path, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	var sig [8]byte
	n, _ := io.ReadFull(f, sig[:])
	f.Close()
	switch {
	case bytes.HasPrefix(sig[:n], []byte("PK\x03\x04")):
		return fmtKeras, path, nil
	case string(sig[:n]) == "\x89HDF\r\n\x1a\n":
		hf, err := h5.Open(path)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", path, err)
		}
		full := hf.Root().HasAttr("model_config")
		hf.Close()
		if full {
			return fmtKeras, path, nil
		}
		return fmtWeightsH5, path, nil
	}
	return "", "", fmt.Errorf("%s: not a format gotf reads (a SavedModel directory, a checkpoint, .keras, .h5, .weights.h5 or .weights.json); it starts with %q",
		path, sig[:n])
}

// notFoundError is a message that says "does not exist" its own way and
// is fs.ErrNotExist for the exit code.
type notFoundError string

func (e notFoundError) Error() string        { return string(e) }
func (e notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

func inspect(w io.Writer, path string, asJSON bool) error {
	format, target, err := detect(path)
	if err != nil {
		return err
	}
	var doc any
	var text func(io.Writer)
	switch format {
	case fmtSavedModel:
		d, err := readSavedModelInfo(target)
		if err != nil {
			return err
		}
		doc, text = d, d.writeText
	case fmtCheckpoint:
		d, err := readCheckpointInfo(target)
		if err != nil {
			return err
		}
		doc, text = d, d.writeText
	case fmtKeras:
		d, err := readKerasInfo(target)
		if err != nil {
			return err
		}
		doc, text = d, d.writeText
	case fmtWeightsH5, fmtWeightsSet:
		d, err := readWeightsInfo(target, format == fmtWeightsSet)
		if err != nil {
			return err
		}
		doc, text = d, d.writeText
	}
	if asJSON {
		return writeJSON(w, doc)
	}
	text(w)
	return nil
}

// pyShape formats dims as a Python tuple, as TensorShape and numpy print
// shapes: (), (3,), (None, 3).
func pyShape(dims []int64, none string) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		if d < 0 {
			parts[i] = none
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
