package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/keraslike"
	"github.com/spf13/cobra"
)

// The formats convert writes, by --to name.
const (
	toKeras           = "keras"
	toH5              = "h5"
	toWeightsH5       = "weights_h5"
	toWeightsJSON     = "weights_json"
	toLegacyWeightsH5 = "legacy_weights_h5"
	toCheckpoint      = "checkpoint"
	toSavedModel      = "saved_model"
)

var convertTargets = []string{toKeras, toH5, toWeightsH5, toWeightsJSON, toLegacyWeightsH5, toCheckpoint, toSavedModel}

type convertFlags struct {
	model        string
	to           string
	maxShardSize float64
	inputName    string
	outputName   string
}

func newConvertCmd() *cobra.Command {
	var f convertFlags
	cmd := &cobra.Command{
		Use:   "convert SRC DST",
		Short: "Convert a model between Keras files, TensorFlow checkpoints and SavedModel",
		Long: `Reads the model or weights at SRC (its format told from its contents, as
inspect tells it) and writes them to DST in the format its name says, or
--to says:

  DST                  --to               written as
  x.keras              keras              Keras 3 archive (model.save("x.keras"))
  x.h5                 h5                 legacy full-model HDF5 (model.save("x.h5"))
  x.weights.h5         weights_h5         model.save_weights("x.weights.h5")
  x.weights.json       weights_json       sharded weights (save_weights with
                                          max_shard_size; --max_shard_size GB)
  any                  legacy_weights_h5  Keras 2 weights-only HDF5 (layer_names)
  a prefix (dir/ckpt)  checkpoint         TensorFlow checkpoint (tf.train.Checkpoint
                                          of the model: weights, object graph)
  a directory          saved_model        SavedModel export (model.export): tag
                                          "serve", signature serving_default

SRC is a .keras archive or legacy .h5 full model, which carries its
architecture, or weights only (.weights.h5, legacy weights-only .h5,
.weights.json, a checkpoint prefix or its directory), which need the
architecture from --model FILE (a .keras or .h5 full model; its weights are
replaced by SRC's).

Pairs that are not defined, and refused:
  SavedModel -> anything   a SavedModel is a serving graph without the Keras
                           config its layers came from; keraslike cannot
                           rebuild a model from it (Keras 3 cannot either:
                           it loads one only as an inference TFSMLayer)
  weights -> anything      without --model: weights carry no architecture
  checkpoint optimizer     a converted model is not compiled: the optimizer's
  state -> anything        slots and iteration count are not carried over
                           (a checkpoint written here holds the weights)
The model's layers must be ones keraslike implements (see
keraslike.LoadKerasModel); a file with others is refused naming the layer.`,
		Example: `  gotf convert model.keras model.h5
  gotf convert model.h5 export/1 --to saved_model
  gotf convert model.keras weights/model.weights.json --max_shard_size 0.5
  gotf convert train/ckpt-3 model.keras --model architecture.keras
  gotf convert model.weights.h5 ckpt/model --to checkpoint --model model.keras`,
		Args: exactArgs(2, "SRC and DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := convert(cmd.ErrOrStderr(), args[0], args[1], f)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s as %s\n", args[1], to)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.model, "model", "", "a .keras or .h5 full model giving the architecture for weights-only SRC")
	cmd.Flags().StringVar(&f.to, "to", "", "DST's format: "+strings.Join(convertTargets, ", ")+" (default from DST's name)")
	cmd.Flags().Float64Var(&f.maxShardSize, "max_shard_size", 5, "GB (2^30 bytes) per shard of .weights.json")
	cmd.Flags().StringVar(&f.inputName, "input_name", "inputs", "saved_model: the signature's input key")
	cmd.Flags().StringVar(&f.outputName, "output_name", "outputs", "saved_model: the signature's output key")
	return cmd
}

// targetFormat is DST's format from --to or its name.
func targetFormat(dst, to string) (string, error) {
	if to != "" {
		for _, t := range convertTargets {
			if t == to {
				if t == toWeightsJSON && !strings.HasSuffix(dst, "weights.json") {
					return "", usagef("--to %s: DST must end in weights.json, as Keras requires", to)
				}
				return t, nil
			}
		}
		return "", usagef("--to %q: want one of %s", to, strings.Join(convertTargets, ", "))
	}
	switch {
	case strings.HasSuffix(dst, ".weights.h5"):
		return toWeightsH5, nil
	case strings.HasSuffix(dst, ".weights.json"):
		return toWeightsJSON, nil
	case strings.HasSuffix(dst, ".keras"):
		return toKeras, nil
	case strings.HasSuffix(dst, ".h5"):
		return toH5, nil
	}
	return "", usagef("%s: say what to write with --to (checkpoint, saved_model, ...); the name does not tell", dst)
}

// convert writes SRC's model to DST and returns the format written.
func convert(stderr io.Writer, src, dst string, f convertFlags) (string, error) {
	to, err := targetFormat(dst, f.to)
	if err != nil {
		return "", err
	}
	if to == toWeightsJSON && !(f.maxShardSize > 0) {
		return "", usagef("--max_shard_size must be positive")
	}
	format, target, err := detect(src)
	if err != nil {
		return "", err
	}
	if format == fmtSavedModel {
		return "", fmt.Errorf("%s is a SavedModel: converting from one is not defined (a serving graph without its Keras config; see gotf convert --help)", src)
	}
	var m *keraslike.Model
	pr := newProgress(stderr, "gotf convert", 2)
	defer pr.done()
	pr.step("reading %s", src)
	if format == fmtKeras {
		if f.model != "" {
			return "", usagef("--model is for weights-only SRC; %s is a full model", src)
		}
		if m, err = keraslike.LoadKerasModel(target, keraslike.LoadOptions{}); err != nil {
			return "", err
		}
	} else {
		if f.model == "" {
			return "", usagef("%s holds weights only (%s): give the architecture with --model FILE (.keras or .h5)", src, format)
		}
		mf, _, err := detect(f.model)
		if err != nil {
			return "", fmt.Errorf("--model: %w", err)
		}
		if mf != fmtKeras {
			return "", fmt.Errorf("--model %s: not a .keras or .h5 full model (it looks like a %s)", f.model, mf)
		}
		if m, err = keraslike.LoadKerasModel(f.model, keraslike.LoadOptions{}); err != nil {
			return "", err
		}
		if err := loadWeights(m, format, target); err != nil {
			m.Close()
			return "", err
		}
	}
	defer m.Close()
	if dir := filepath.Dir(dst); to != toSavedModel {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
	}
	pr.step("writing %s", dst)
	switch to {
	case toKeras, toH5:
		err = m.SaveKeras(dst)
	case toWeightsH5:
		err = m.SaveWeightsH5(dst)
	case toWeightsJSON:
		err = m.SaveWeightsH5WithOptions(dst, keraslike.SaveWeightsOptions{MaxShardSize: f.maxShardSize})
	case toLegacyWeightsH5:
		err = m.SaveWeightsLegacyH5(dst)
	case toCheckpoint:
		err = m.SaveCheckpoint(dst, keraslike.CheckpointOptions{WeightsOnly: true})
	case toSavedModel:
		if _, serr := os.Stat(dst); serr == nil {
			return "", fmt.Errorf("%s exists: a SavedModel is written to a new directory", dst)
		}
		err = m.Export(dst, keraslike.ExportOptions{InputName: f.inputName, OutputName: f.outputName})
	}
	if err != nil {
		return "", err
	}
	return to, nil
}

// loadWeights reads weights-only SRC into m.
func loadWeights(m *keraslike.Model, format, target string) error {
	switch format {
	case fmtCheckpoint:
		return m.LoadCheckpoint(target)
	case fmtWeightsSet:
		return m.LoadWeightsH5(target)
	}
	// Keras 2's weights-only files list their layers in a root attribute;
	// Keras 3's have none.
	hf, err := h5.Open(target)
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	legacy := hf.Root().HasAttr("layer_names")
	hf.Close()
	if legacy {
		return m.LoadWeightsLegacyH5(target)
	}
	return m.LoadWeightsH5(target)
}
