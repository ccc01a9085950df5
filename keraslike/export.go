package keraslike

import (
	"fmt"

	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
)

// Input is the inference graph's input placeholder (after Build).
func (m *Model) Input() tfgo.Output { return m.x }

// Output is the inference graph's output (after Build).
func (m *Model) Output() tfgo.Output { return m.y }

// ExportOptions name the serving signature's tensors.
type ExportOptions struct {
	// InputName and OutputName key the serving_default signature; defaults
	// "inputs" and "outputs" (Keras model.export's names are the layer names).
	InputName, OutputName string
	// Assets are files to ship with the model (e.g. a vocabulary), as string
	// constants in the graph holding their paths.
	Assets []tfgo.Output
	// WeightDType, tfgo.Half or tfgo.BFloat16, stores the model's float32
	// weights in that dtype in the SavedModel (half the size; weight-only:
	// the graph casts them back and computes in the model's compute
	// dtype). The zero value stores the weights as the model holds them
	// (int8 kernels after Model.Quantize). The model itself is unchanged.
	WeightDType tfgo.DataType
}

// Export writes the inference model as a SavedModel in dir (model.export):
// tag "serve", a serving_default signature from the input to the output,
// the graph pruned to it, and the current weights. TensorFlow Serving,
// tf.saved_model.load and saved_model_cli read it.
func (m *Model) Export(dir string, o ExportOptions) error {
	return m.export(o, func(g *tfgo.Graph, sess *tfgo.Session, sig map[string]runner.Signature, ro runner.ExportOptions) error {
		return runner.Export(dir, g, sess, sig, ro)
	})
}

// ExportVersion publishes the model as version of a TF Serving base
// directory (base/<version>/), atomically; it returns the version's path.
func (m *Model) ExportVersion(base string, version int64, o ExportOptions) (string, error) {
	var path string
	err := m.export(o, func(g *tfgo.Graph, sess *tfgo.Session, sig map[string]runner.Signature, ro runner.ExportOptions) error {
		var err error
		path, err = runner.ExportVersion(base, version, g, sess, sig, ro)
		return err
	})
	return path, err
}

// export hands write what both exports need: the graph, the session with
// the weights stored as o asks, the serving signature and the runner's
// options.
func (m *Model) export(o ExportOptions, write func(*tfgo.Graph, *tfgo.Session, map[string]runner.Signature, runner.ExportOptions) error) error {
	return m.withWeightsStoredAs(o.WeightDType, func() error {
		sig, err := m.exportSignature(o)
		if err != nil {
			return err
		}
		sess, err := m.session()
		if err != nil {
			return err
		}
		return write(m.Scope().Graph(), sess, sig, runner.ExportOptions{Assets: o.Assets, ClearDevices: true})
	})
}

func (m *Model) exportSignature(o ExportOptions) (map[string]runner.Signature, error) {
	if err := m.Build(); err != nil {
		return nil, err
	}
	if o.InputName == "" {
		o.InputName = "inputs"
	}
	if o.OutputName == "" {
		o.OutputName = "outputs"
	}
	if o.InputName == o.OutputName {
		return nil, fmt.Errorf("export %q: input and output share the name %q", m.name, o.InputName)
	}
	return map[string]runner.Signature{"serving_default": {
		Inputs:  map[string]tfgo.Output{o.InputName: m.x},
		Outputs: map[string]tfgo.Output{o.OutputName: m.y},
	}}, nil
}
