package keraslike

import (
	"fmt"
	"strings"

	"github.com/gotf/gotf/tfgo"
)

// withWeightsStoredAs runs f with the model's inference graph (Input,
// Output) reading its float32 weights from copies in dt (float16 or
// bfloat16; 0 runs f as is): weight-only half-precision storage for
// Export. The copies are cast back to the dtype each layer reads them in
// (Context.Read), so the layers compute as before, on rounded weights.
// Afterwards the weights and the inference graph are the model's own
// again and the copies are freed.
func (m *Model) withWeightsStoredAs(dt tfgo.DataType, f func() error) (err error) {
	if dt == 0 {
		return f()
	}
	if dt != tfgo.Half && dt != tfgo.BFloat16 {
		return fmt.Errorf("export %q: weight dtype %s is not implemented (float16 or bfloat16; int8 through Model.Quantize)", m.name, dt)
	}
	sess, err := m.session()
	if err != nil {
		return err
	}
	var ws []*Weight
	for _, w := range m.Weights() {
		if w.DType() == tfgo.Float {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return fmt.Errorf("export %q: weight dtype %s: the model has no float32 weight", m.name, dt)
	}
	root := m.Scope().SubScope("weights_as_" + dt.String())
	copies := make([]*tfgo.Variable, len(ws))
	var assigns []*tfgo.Operation
	for i, w := range ws {
		s := root
		parts := strings.Split(w.Path, "/")
		for _, p := range parts[:len(parts)-1] {
			s = s.SubScope(p)
		}
		copies[i] = tfgo.NewVariable(s, parts[len(parts)-1], dt, w.Shape(), tfgo.Zeros(), tfgo.Trainable(false))
		assigns = append(assigns, copies[i].Assign(s, tfgo.Cast(s, w.Value(), dt)))
	}
	if err := m.Scope().Err(); err != nil {
		return fmt.Errorf("export %q: %w", m.name, err)
	}
	if _, err := sess.Run(nil, nil, assigns...); err != nil {
		return fmt.Errorf("export %q: casting the weights to %s: %w", m.name, dt, err)
	}
	originals := make([]*tfgo.Variable, len(ws))
	for i, w := range ws {
		originals[i], w.Variable = w.Variable, copies[i]
	}
	x, y := m.x, m.y
	defer func() {
		for i, w := range ws {
			w.Variable = originals[i]
		}
		m.x, m.y, m.built = x, y, true
		ds := root.SubScope("free")
		var frees []*tfgo.Operation
		for _, c := range copies {
			frees = append(frees, tfgo.DestroyResourceOp(ds, c.Handle(), tfgo.DestroyResourceOpIgnoreLookupError(true)))
		}
		if e := m.Scope().Err(); e != nil && err == nil {
			err = e
		} else if _, e := sess.Run(nil, nil, frees...); e != nil && err == nil {
			err = fmt.Errorf("export %q: freeing the %s copies: %w", m.name, dt, e)
		}
	}()
	m.built = false
	if err := m.Build(); err != nil {
		return err
	}
	return f()
}
