package tfgo

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gotf/gotf/cgo"
	kpb "github.com/wamuir/graft/tensorflow/core/framework/kernel_def_go_proto"
)

// kernelsByOp is the runtime's registered kernels by op type, read once.
var kernelsByOp = sync.OnceValues(func() (map[string][]*kpb.KernelDef, error) {
	l, err := cgo.KernelList()
	if err != nil {
		return nil, err
	}
	m := map[string][]*kpb.KernelDef{}
	for _, k := range l.GetKernel() {
		m[k.GetOp()] = append(m[k.GetOp()], k)
	}
	return m, nil
})

// CheckKernels reports the first operation of g that no registered kernel
// of the given device types ("CPU", "GPU"; default "CPU") can run with its
// dtypes — a float16 policy on an op whose CPU kernel has no float16
// variant, say — as an error naming the op, its type and the attribute
// that has no kernel, before a session run would fail on it. Op types with
// no kernel registered at all (graph functions called by name, ops XLA
// compiles) are left to the runtime.
func CheckKernels(g *Graph, deviceTypes ...string) error {
	if g == nil {
		return nil
	}
	if len(deviceTypes) == 0 {
		deviceTypes = []string{"CPU"}
	}
	// Kernels registered for DEFAULT (NoOp, Identity on some devices) run on any device.
	deviceTypes = append(slices.Clone(deviceTypes), "DEFAULT")
	byOp, err := kernelsByOp()
	if err != nil {
		return err
	}
	for _, op := range g.Operations() {
		ks := byOp[op.Type()]
		if len(ks) == 0 {
			continue
		}
		var near *kpb.KernelDef // a kernel of the device types, to name what it lacks
		ok := false
		for _, k := range ks {
			if !slices.Contains(deviceTypes, k.GetDeviceType()) {
				continue
			}
			if kernelMatches(op, k) {
				ok = true
				break
			}
			near = k
		}
		if ok {
			continue
		}
		devs := strings.Join(deviceTypes[:len(deviceTypes)-1], " or ")
		if near == nil {
			return fmt.Errorf("op %q (%s) has no %s kernel", op.Name(), op.Type(), devs)
		}
		return fmt.Errorf("op %q (%s) has no %s kernel for %s", op.Name(), op.Type(), devs, kernelMismatch(op, ks, deviceTypes))
	}
	return nil
}

// kernelMatches reports whether op's attributes satisfy every type
// constraint of k (TensorFlow's KernelAttrsMatch: a type attr must be one
// of the allowed types, each element of a type-list attr too).
func kernelMatches(op *Operation, k *kpb.KernelDef) bool {
	for _, c := range k.GetConstraint() {
		allowed := c.GetAllowedValues().GetList().GetType()
		v, err := op.Attr(c.GetName())
		if err != nil {
			return false
		}
		switch t := v.(type) {
		case DataType:
			if !typeAllowed(t, allowed) {
				return false
			}
		case []DataType:
			for _, e := range t {
				if !typeAllowed(e, allowed) {
					return false
				}
			}
		}
	}
	return true
}

func typeAllowed[T ~int32](dt DataType, allowed []T) bool {
	for _, a := range allowed {
		if int32(a) == int32(dt) {
			return true
		}
	}
	return false
}

// kernelMismatch names the attribute whose value no kernel of the device
// types allows, and what the kernels allow ("T=float16 (kernels: float32,
// float64)").
func kernelMismatch(op *Operation, ks []*kpb.KernelDef, deviceTypes []string) string {
	allowed := map[string][]string{}
	var names []string
	for _, k := range ks {
		if !slices.Contains(deviceTypes, k.GetDeviceType()) {
			continue
		}
		for _, c := range k.GetConstraint() {
			n := c.GetName()
			if _, seen := allowed[n]; !seen {
				names = append(names, n)
			}
			for _, t := range c.GetAllowedValues().GetList().GetType() {
				s := DataType(t).String()
				if !slices.Contains(allowed[n], s) {
					allowed[n] = append(allowed[n], s)
				}
			}
		}
	}
	for _, n := range names {
		v, err := op.Attr(n)
		if err != nil {
			continue
		}
		var have []DataType
		switch t := v.(type) {
		case DataType:
			have = []DataType{t}
		case []DataType:
			have = t
		}
		for _, h := range have {
			if !slices.Contains(allowed[n], h.String()) {
				return fmt.Sprintf("%s=%s (kernels: %s)", n, h, strings.Join(allowed[n], ", "))
			}
		}
	}
	return "its attributes"
}
