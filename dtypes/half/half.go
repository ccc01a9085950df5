// Package half holds the Go element types of float16 and bfloat16 tensors,
// with the rounding numpy, ml_dtypes and TensorFlow use, in pure Go.
package half

import "math"

// Float16 is an IEEE 754 half-precision number, stored as its bit pattern
// (the element type of float16 tensors).
type Float16 uint16

// BFloat16 is a brain floating-point number (the top 16 bits of a float32),
// stored as its bit pattern (the element type of bfloat16 tensors).
type BFloat16 uint16

// NewFloat16 rounds f to the nearest float16 (ties to even), as numpy's
// astype(float16) and TensorFlow's Cast do.
func NewFloat16(f float32) Float16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return Float16(sign | 0x7e00)
		}
		return Float16(sign | 0x7c00)
	case exp-127 > 15: // overflow
		return Float16(sign | 0x7c00)
	case exp-127 >= -14: // normal
		h := uint32(exp-127+15)<<10 | mant>>13
		return Float16(sign | uint16(roundEven(h, mant, 13)))
	case exp-127 >= -25: // subnormal in float16
		m := mant | 0x800000
		shift := uint32(-(exp - 127) - 14 + 13)
		return Float16(sign | uint16(roundEven(m>>shift, m, shift)))
	}
	return Float16(sign) // underflow to zero
}

// roundEven rounds the truncated value h, whose dropped low bits are the low
// shift bits of full, to nearest even.
func roundEven(h, full, shift uint32) uint32 {
	rem := full & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && h&1 == 1) {
		h++
	}
	return h
}

// Float32 converts h exactly.
func (h Float16) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: value = mant * 2^-24.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// NewBFloat16 rounds f to the nearest bfloat16 (ties to even), as TensorFlow does.
func NewBFloat16(f float32) BFloat16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it a quiet NaN
		return BFloat16(b>>16 | 0x40)
	}
	return BFloat16(roundEven(b>>16, b, 16))
}

// Float32 converts h exactly.
func (h BFloat16) Float32() float32 { return math.Float32frombits(uint32(h) << 16) }
