package cgo

// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"sync"

	kpb "github.com/wamuir/graft/tensorflow/core/framework/kernel_def_go_proto"
	oppb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	"google.golang.org/protobuf/proto"
)

var opList = sync.OnceValues(func() (*oppb.OpList, error) {
	l := new(oppb.OpList)
	if err := proto.Unmarshal(takeBuffer(C.TF_GetAllOpList()), l); err != nil {
		return nil, fmt.Errorf("decoding the runtime's OpList: %w", err)
	}
	return l, nil
})

// OpList returns every op the linked runtime registers (TF_GetAllOpList):
// names, inputs, outputs and attrs. The list is read once and shared; do not
// modify it.
func OpList() (*oppb.OpList, error) { return opList() }

// KernelList returns every registered kernel (TF_GetAllRegisteredKernels):
// which op runs on which device type for which dtypes.
func KernelList() (*kpb.KernelList, error) {
	st := newStatus()
	defer st.close()
	buf := C.TF_GetAllRegisteredKernels(st.c)
	if err := st.err(""); err != nil {
		return nil, err
	}
	l := new(kpb.KernelList)
	if err := proto.Unmarshal(takeBuffer(buf), l); err != nil {
		return nil, fmt.Errorf("decoding the runtime's KernelList: %w", err)
	}
	return l, nil
}
