package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"unsafe"

	"google.golang.org/protobuf/proto"
)

// withBuffer passes b to fn as a TF_Buffer that lives only for the call.
func withBuffer(b []byte, fn func(*C.TF_Buffer)) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = C.CBytes(b)
		defer C.free(p)
	}
	buf := C.TF_Buffer{data: p, length: C.size_t(len(b))}
	fn(&buf)
}

// withProto is withBuffer for a marshalled message (nil is the empty message).
func withProto(m proto.Message, fn func(*C.TF_Buffer)) error {
	var b []byte
	if m != nil {
		var err error
		if b, err = proto.Marshal(m); err != nil {
			return err
		}
	}
	withBuffer(b, fn)
	return nil
}

// takeBuffer copies a TF_Buffer's bytes into Go and deletes the buffer.
func takeBuffer(b *C.TF_Buffer) []byte {
	defer C.TF_DeleteBuffer(b)
	return bufferBytes(b)
}

func bufferBytes(b *C.TF_Buffer) []byte {
	if b == nil || b.length == 0 {
		return nil
	}
	return C.GoBytes(b.data, C.int(b.length))
}

func mallocBytes(n uintptr) unsafe.Pointer { return C.malloc(C.size_t(n)) }
