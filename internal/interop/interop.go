// Package interop converts between the runtime's tensors and the arrays the
// Python reference worker (internal/pyref) exchanges, for interop tests.
// It speaks the binding's types (package cgo) rather than tfgo's aliases of
// them because tfgo's own tests use it: importing tfgo would be a cycle.
package interop

import (
	"fmt"

	"github.com/gotf/gotf/cgo"
	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/pyref"
)

// ToArray copies a tensor into an Array for Python.
func ToArray(t *cgo.Tensor) (*pyref.Array, error) {
	if t.DataType() == dtypes.String {
		s, err := t.Strings()
		if err != nil {
			return nil, err
		}
		return &pyref.Array{DType: "string", Shape: t.Shape(), Strings: s}, nil
	}
	return pyref.NewArray(t.DataType().String(), t.Shape(), append([]byte(nil), t.Data()...)), nil
}

// ToTensor copies an Array from Python into a tensor.
func ToTensor(a *pyref.Array) (*cgo.Tensor, error) {
	dt, err := dtypes.Parse(a.DType)
	if err != nil {
		return nil, fmt.Errorf("array from Python: %w", err)
	}
	if dt == dtypes.String {
		return cgo.NewStringTensor(a.Shape, a.Strings)
	}
	return cgo.NewTensor(dt, a.Shape, a.Data)
}
