package tfgo

import (
	"errors"
	"fmt"
	"math"

	"github.com/gotf/gotf/dtypes/half"
)

// Initializer produces the initial value of a variable: an Output of the
// given shape and dtype, built in scope s (NewVariable passes the scope
// "<variable>/Initializer"). Errors go to the scope, as for any operation.
//
// The implementations mirror keras.initializers (Keras 3) with their Keras
// names, arguments and defaults; TruncatedNormal is called
// TruncatedNormalInitializer because TruncatedNormal is a TensorFlow op.
//
// Seeds: the random initializers take an int64 seed and are deterministic
// given it — the same seed gives the same values in every session, graph
// and process. They build exactly the ops Keras 3's TensorFlow backend builds
// for an integer seed: the seed becomes the int32 pair
// [floormod(seed, 2^31-2), 0] (keras.random.draw_seed + _cast_seed), and
// tf.random.stateless_{uniform,normal,truncated_normal} with the default
// "auto_select" algorithm (StatelessRandomGetKeyCounter, then
// StatelessRandomUniformV2 / StatelessRandomNormalV2 /
// StatelessTruncatedNormalV2 with alg 3, then value*scale+offset). So
// keras.initializers.GlorotUniform(seed=42)(shape) in Python and
// GlorotUniform(42) here give the same numbers on the same device type.
// Unlike Keras there is no "unseeded" form: pass rand.Int63() for fresh
// values.
type Initializer interface {
	Init(s *Scope, shape []int64, dtype DataType) Output
}

// InitializerFunc adapts a function to the Initializer interface.
type InitializerFunc func(s *Scope, shape []int64, dtype DataType) Output

// Init calls f; a nil f records an error on s.
func (f InitializerFunc) Init(s *Scope, shape []int64, dtype DataType) Output {
	if f == nil {
		s.UpdateErr("", errors.New("nil InitializerFunc"))
		return Output{}
	}
	return f(s, shape, dtype)
}

// Zeros is keras.initializers.Zeros: a tensor of zeros (any numeric or bool dtype).
func Zeros() Initializer { return constantInit{value: 0} }

// Ones is keras.initializers.Ones: a tensor of ones (any numeric or bool dtype).
func Ones() Initializer { return constantInit{value: 1} }

// Constant is keras.initializers.Constant(value): every element equal to
// value converted to the variable's dtype.
func Constant(value float64) Initializer { return constantInit{value: value} }

type constantInit struct{ value float64 }

func (c constantInit) Init(s *Scope, shape []int64, dtype DataType) Output {
	v, err := scalarOfDType(c.value, dtype)
	if err != nil {
		s.UpdateErr(fullOpName(s, "Fill"), err)
		return Output{}
	}
	return Fill(s, shapeConst(s, shape), Const(s, v))
}

// InitialValue is an initializer holding exactly value (any Go value
// NewTensor accepts, or a *Tensor), e.g. weights loaded from elsewhere.
// Its shape and dtype must be the variable's: NewVariable reports a
// mismatch as an error naming the variable's Assign op.
func InitialValue(value any) Initializer {
	return InitializerFunc(func(s *Scope, _ []int64, _ DataType) Output { return Const(s, value) })
}

// RandomNormal is keras.initializers.RandomNormal(mean, stddev, seed): draws
// from N(mean, stddev²) (Keras defaults: mean 0, stddev 0.05).
func RandomNormal(mean, stddev float64, seed int64) Initializer {
	return randomInit{dist: distNormal, a: mean, b: stddev, seed: seed}
}

// TruncatedNormalInitializer is keras.initializers.TruncatedNormal(mean,
// stddev, seed): draws from N(mean, stddev²), re-drawing values more than
// two stddev from the mean (Keras defaults: mean 0, stddev 0.05).
func TruncatedNormalInitializer(mean, stddev float64, seed int64) Initializer {
	return randomInit{dist: distTruncated, a: mean, b: stddev, seed: seed}
}

// VarianceScaling is keras.initializers.VarianceScaling(scale, mode,
// distribution, seed): with n the fan given by mode ("fan_in", "fan_out" or
// "fan_avg", fans as keras compute_fans computes them), distribution
// "truncated_normal" (or "normal") draws with stddev sqrt(scale/n)/0.8796…
// (the stddev of a unit normal truncated at ±2), "untruncated_normal" with
// stddev sqrt(scale/n), "uniform" within ±sqrt(3*scale/n).
func VarianceScaling(scale float64, mode, distribution string, seed int64) Initializer {
	return varianceScaling{scale: scale, mode: mode, distribution: distribution, seed: seed}
}

// GlorotUniform is keras.initializers.GlorotUniform(seed): uniform within
// ±sqrt(6/(fan_in+fan_out)), i.e. VarianceScaling(1, "fan_avg", "uniform").
func GlorotUniform(seed int64) Initializer { return VarianceScaling(1, "fan_avg", "uniform", seed) }

// GlorotNormal is keras.initializers.GlorotNormal(seed):
// VarianceScaling(1, "fan_avg", "truncated_normal").
func GlorotNormal(seed int64) Initializer {
	return VarianceScaling(1, "fan_avg", "truncated_normal", seed)
}

// HeNormal is keras.initializers.HeNormal(seed): a truncated normal of
// stddev sqrt(2/fan_in) (after truncation), i.e.
// VarianceScaling(2, "fan_in", "truncated_normal").
func HeNormal(seed int64) Initializer { return VarianceScaling(2, "fan_in", "truncated_normal", seed) }

// HeUniform is keras.initializers.HeUniform(seed): uniform within
// ±sqrt(6/fan_in), i.e. VarianceScaling(2, "fan_in", "uniform").
func HeUniform(seed int64) Initializer { return VarianceScaling(2, "fan_in", "uniform", seed) }

// ComputeFans is keras.initializers compute_fans: (fan_in, fan_out) of a
// weight shape — 1,1 for a scalar; n,n for [n]; rows, cols for a matrix;
// for a convolution kernel [..., in, out] both are multiplied by the
// receptive field size (the product of the leading dims).
func ComputeFans(shape []int64) (fanIn, fanOut int64) {
	switch len(shape) {
	case 0:
		return 1, 1
	case 1:
		return shape[0], shape[0]
	case 2:
		return shape[0], shape[1]
	}
	receptive := int64(1)
	for _, d := range shape[:len(shape)-2] {
		receptive *= d
	}
	return shape[len(shape)-2] * receptive, shape[len(shape)-1] * receptive
}

// truncatedNormalStddev is the stddev of a unit normal truncated to [-2, 2].
const truncatedNormalStddev = 0.87962566103423978

type varianceScaling struct {
	scale              float64
	mode, distribution string
	seed               int64
}

func (v varianceScaling) Init(s *Scope, shape []int64, dtype DataType) Output {
	if v.scale <= 0 {
		s.UpdateErr(fullOpName(s, "VarianceScaling"), fmt.Errorf("scale must be positive, got %g", v.scale))
		return Output{}
	}
	fanIn, fanOut := ComputeFans(shape)
	scale := v.scale
	switch v.mode {
	case "fan_in":
		scale /= math.Max(1, float64(fanIn))
	case "fan_out":
		scale /= math.Max(1, float64(fanOut))
	case "fan_avg":
		scale /= math.Max(1, float64(fanIn+fanOut)/2)
	default:
		s.UpdateErr(fullOpName(s, "VarianceScaling"), fmt.Errorf("mode %q: want fan_in, fan_out or fan_avg", v.mode))
		return Output{}
	}
	switch v.distribution {
	case "truncated_normal", "normal":
		return randomInit{dist: distTruncated, a: 0, b: math.Sqrt(scale) / truncatedNormalStddev, seed: v.seed}.Init(s, shape, dtype)
	case "untruncated_normal":
		return randomInit{dist: distNormal, a: 0, b: math.Sqrt(scale), seed: v.seed}.Init(s, shape, dtype)
	case "uniform":
		limit := math.Sqrt(3 * scale)
		return randomInit{dist: distUniform, a: -limit, b: limit, seed: v.seed}.Init(s, shape, dtype)
	}
	s.UpdateErr(fullOpName(s, "VarianceScaling"), fmt.Errorf("distribution %q: want truncated_normal, untruncated_normal or uniform", v.distribution))
	return Output{}
}

type distribution int

const (
	distUniform   distribution = iota // a = minval, b = maxval
	distNormal                        // a = mean, b = stddev
	distTruncated                     // a = mean, b = stddev
)

// randomInit builds what tf.random.stateless_uniform / stateless_normal /
// stateless_truncated_normal build for Keras's integer seed.
type randomInit struct {
	dist distribution
	a, b float64
	seed int64
}

// autoSelectAlg is tf.random.Algorithm.AUTO_SELECT (Philox on CPU and GPU).
const autoSelectAlg = int32(3)

func (r randomInit) Init(s *Scope, shape []int64, dtype DataType) Output {
	name := map[distribution]string{distUniform: "stateless_random_uniform", distNormal: "stateless_random_normal", distTruncated: "stateless_truncated_normal"}[r.dist]
	switch dtype {
	case Float, Double, Half, BFloat16:
	default:
		s.UpdateErr(fullOpName(s, name), fmt.Errorf("random initializers need a float dtype (float16, bfloat16, float32, float64), not %s", dtype))
		return Output{}
	}
	rs := s.SubScope(name)
	// keras.random.draw_seed(int) -> int64 [seed, 0]; _cast_seed -> int32 floormod(seed, int32.max - 1).
	const m = math.MaxInt32 - 1
	seed0 := ((r.seed % m) + m) % m
	seed := Const(rs, []int32{int32(seed0), 0})
	key, counter := StatelessRandomGetKeyCounter(rs, seed)
	alg := Const(rs, autoSelectAlg)
	shp := shapeConst(rs, shape)
	pa, pb := r.a, r.b
	if r.dist == distUniform {
		// Keras passes tf.cast(minval, dtype), which goes through a float32
		// tensor first; mean and stddev are converted to dtype directly.
		pa, pb = float64(float32(pa)), float64(float32(pb))
	}
	a, _ := scalarOfDType(pa, dtype) // dtype is a float type: no error
	b, _ := scalarOfDType(pb, dtype)
	switch r.dist {
	case distUniform:
		minval, maxval := Const(rs, a), Const(rs, b)
		rnd := StatelessRandomUniformV2(rs, shp, key, counter, alg, StatelessRandomUniformV2Dtype(dtype))
		width := Sub(rs, maxval, minval)
		return AddV2(rs, Mul(rs, rnd, width), minval)
	case distNormal, distTruncated:
		mean, stddev := Const(rs, a), Const(rs, b)
		var rnd Output
		if r.dist == distTruncated {
			rnd = StatelessTruncatedNormalV2(rs, shp, key, counter, alg, StatelessTruncatedNormalV2Dtype(dtype))
		} else {
			rnd = StatelessRandomNormalV2(rs, shp, key, counter, alg, StatelessRandomNormalV2Dtype(dtype))
		}
		return AddV2(rs, Mul(rs, rnd, stddev), mean)
	}
	return Output{}
}

// shapeConst is a shape as an int32 vector (int64 when a dim needs it), as
// Python's shape_tensor makes it.
func shapeConst(s *Scope, shape []int64) Output {
	small := make([]int32, len(shape))
	for i, d := range shape {
		if d < 0 || d > math.MaxInt32 {
			return Const(s, append([]int64{}, shape...))
		}
		small[i] = int32(d)
	}
	return Const(s, small)
}

// scalarOfDType converts v to a Go scalar whose dtype is dt.
func scalarOfDType(v float64, dt DataType) (any, error) {
	switch dt {
	case Float:
		return float32(v), nil
	case Double:
		return v, nil
	case Half:
		return half.NewFloat16(float32(v)), nil
	case BFloat16:
		return half.NewBFloat16(float32(v)), nil
	case Int8:
		return int8(v), nil
	case Int16:
		return int16(v), nil
	case Int32:
		return int32(v), nil
	case Int64:
		return int64(v), nil
	case Uint8:
		return uint8(v), nil
	case Uint16:
		return uint16(v), nil
	case Uint32:
		return uint32(v), nil
	case Uint64:
		return uint64(v), nil
	case Bool:
		return v != 0, nil
	case Complex64:
		return complex(float32(v), 0), nil
	case Complex128:
		return complex(v, 0), nil
	}
	return nil, fmt.Errorf("no scalar of dtype %s", dt)
}
