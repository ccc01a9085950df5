package keraslike

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gotf/gotf/tfgo"
)

// Loss computes a scalar loss from targets and predictions, averaged over
// every element as Keras' "sum_over_batch_size" reduction does.
type Loss interface {
	Name() string
	Compute(s *tfgo.Scope, yTrue, yPred tfgo.Output) (tfgo.Output, error)
}

// LossByName returns a loss by its Keras name ("sparse_categorical_crossentropy",
// "categorical_crossentropy", "mse"), predictions being probabilities; use
// the constructors for from_logits.
func LossByName(name string) (Loss, error) {
	switch strings.ToLower(name) {
	case "sparse_categorical_crossentropy":
		return SparseCategoricalCrossentropy{}, nil
	case "categorical_crossentropy":
		return CategoricalCrossentropy{}, nil
	case "mse", "mean_squared_error":
		return MeanSquaredError{}, nil
	}
	return nil, fmt.Errorf("unknown loss %q (known: sparse_categorical_crossentropy, categorical_crossentropy, mse)", name)
}

// SparseCategoricalCrossentropy is keras.losses.SparseCategoricalCrossentropy:
// integer class targets of shape [...] against predictions [..., classes].
type SparseCategoricalCrossentropy struct{ FromLogits bool }

// Name is the Keras name.
func (SparseCategoricalCrossentropy) Name() string { return "sparse_categorical_crossentropy" }

// Compute returns the mean cross-entropy.
func (l SparseCategoricalCrossentropy) Compute(s *tfgo.Scope, yTrue, yPred tfgo.Output) (tfgo.Output, error) {
	if err := lossArgs(l.Name(), s, yTrue, yPred); err != nil {
		return tfgo.Output{}, err
	}
	if yTrue.DataType() != tfgo.Int32 && yTrue.DataType() != tfgo.Int64 {
		return tfgo.Output{}, fmt.Errorf("sparse_categorical_crossentropy needs integer targets, got %s", yTrue.DataType())
	}
	ss := s.SubScope("sparse_categorical_crossentropy")
	logits := yPred
	if !l.FromLogits {
		// Keras clips probabilities to [eps, 1-eps] and takes their log.
		logits = tfgo.Log(ss, tfgo.ClipByValue(ss, yPred, tfgo.Const(ss, float32(1e-7)), tfgo.Const(ss, float32(1-1e-7))))
	}
	shape := staticShape(yPred)
	if len(shape) == 0 || shape[len(shape)-1] < 0 {
		return tfgo.Output{}, fmt.Errorf("sparse_categorical_crossentropy needs predictions with a known class axis, got shape %v", shape)
	}
	flat := tfgo.Reshape(ss, logits, tfgo.Const(ss, []int32{-1, int32(shape[len(shape)-1])}))
	labels := tfgo.Reshape(ss, yTrue, tfgo.Const(ss, []int32{-1}))
	// The fused SparseSoftmaxCrossEntropyWithLogits, which Keras calls,
	// computes the same steps about three times slower on a CPU.
	ce := tfgo.SparseSoftmaxCrossEntropy(ss, castTo(ss, flat, tfgo.Float), labels)
	return tfgo.Mean(ss, ce, tfgo.Const(ss, []int32{0})), nil
}

// CategoricalCrossentropy is keras.losses.CategoricalCrossentropy: one-hot
// (or soft) targets against predictions of the same shape.
type CategoricalCrossentropy struct{ FromLogits bool }

// Name is the Keras name.
func (CategoricalCrossentropy) Name() string { return "categorical_crossentropy" }

// Compute returns the mean cross-entropy.
func (l CategoricalCrossentropy) Compute(s *tfgo.Scope, yTrue, yPred tfgo.Output) (tfgo.Output, error) {
	if err := lossArgs(l.Name(), s, yTrue, yPred); err != nil {
		return tfgo.Output{}, err
	}
	ss := s.SubScope("categorical_crossentropy")
	yTrue = castTo(ss, yTrue, tfgo.Float)
	yPred = castTo(ss, yPred, tfgo.Float)
	var logp tfgo.Output
	if l.FromLogits {
		logp = tfgo.LogSoftmax(ss, yPred)
	} else {
		p := tfgo.RealDiv(ss, yPred, tfgo.Sum(ss, yPred, tfgo.Const(ss, []int32{-1}), tfgo.SumKeepDims(true)))
		logp = tfgo.Log(ss, tfgo.ClipByValue(ss, p, tfgo.Const(ss, float32(1e-7)), tfgo.Const(ss, float32(1-1e-7))))
	}
	ce := tfgo.Neg(ss, tfgo.Sum(ss, tfgo.Mul(ss, yTrue, logp), tfgo.Const(ss, []int32{-1})))
	return meanAll(ss, ce), nil
}

// MeanSquaredError is keras.losses.MeanSquaredError.
type MeanSquaredError struct{}

// Name is the Keras name.
func (MeanSquaredError) Name() string { return "mean_squared_error" }

// Compute returns the mean squared error.
func (l MeanSquaredError) Compute(s *tfgo.Scope, yTrue, yPred tfgo.Output) (tfgo.Output, error) {
	if err := lossArgs(l.Name(), s, yTrue, yPred); err != nil {
		return tfgo.Output{}, err
	}
	ss := s.SubScope("mean_squared_error")
	d := tfgo.Sub(ss, castTo(ss, yPred, tfgo.Float), castTo(ss, yTrue, tfgo.Float))
	return meanAll(ss, tfgo.Square(ss, d)), nil
}

// lossArgs is the first step of every loss's Compute: a nil or zero scope
// has nowhere to add the loss, and a zero Output (what a failed layer or
// forward function returns) has no dtype or shape to check.
func lossArgs(loss string, s *tfgo.Scope, yTrue, yPred tfgo.Output) error {
	if err := s.Err(); errors.Is(err, tfgo.ErrInvalidScope) {
		return fmt.Errorf("%s: %w", loss, err)
	}
	if yTrue.Op == nil || yPred.Op == nil {
		return fmt.Errorf("%s: the targets or the predictions are a zero Output", loss)
	}
	return nil
}

// meanAll is the mean of every element.
func meanAll(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
	return tfgo.Mean(s, tfgo.Reshape(s, x, tfgo.Const(s, []int32{-1})), tfgo.Const(s, []int32{0}))
}
