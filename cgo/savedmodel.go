package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
// #include "tensorflow/c/c_api_experimental.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// LoadSavedModel loads the MetaGraphDef tagged with every one of tags (e.g.
// "serve") from the SavedModel directory exportDir, as TensorFlow Serving
// does (TF_LoadSessionFromSavedModel, the C++ loader): it imports the graph
// into a new Graph, opens a session on it, restores the variables from
// exportDir/variables/variables through the SaverDef's restore op, and runs
// the init op (main_op, legacy_init_op or the "__saved_model_init_op"
// signature) with the asset paths fed. It returns the session and the
// MetaGraphDef that was loaded (signature_def, asset_file_def, ...).
//
// The session's Graph (Session.Graph) is new and belongs to the caller as
// much as the session does: Close the session, then the graph. opts may be
// nil; its Target and XLA apply as in NewSession.
func LoadSavedModel(exportDir string, tags []string, opts *SessionOptions) (*Session, *cpb.MetaGraphDef, error) {
	copts, err := opts.c()
	if err != nil {
		return nil, nil, err
	}
	defer C.TF_DeleteSessionOptions(copts)
	st := newStatus()
	defer st.close()

	cdir := C.CString(exportDir)
	defer C.free(unsafe.Pointer(cdir))
	// The tags live in C memory for the whole call.
	ctags := cArrayOf[*C.char](len(tags))
	defer C.free(unsafe.Pointer(ctags))
	for i, tag := range tags {
		ct := C.CString(tag)
		defer C.free(unsafe.Pointer(ct))
		unsafe.Slice(ctags, len(tags))[i] = ct
	}
	g := NewGraph()
	meta := C.TF_NewBuffer()
	defer C.TF_DeleteBuffer(meta)
	c := C.TF_LoadSessionFromSavedModel(copts, nil, cdir, ctags, C.int(len(tags)), g.c, meta, st.c)
	if err := st.err(""); err != nil {
		g.Close()
		return nil, nil, err
	}
	s := &Session{c: c, g: g}
	runtime.SetFinalizer(s, (*Session).Close)
	mg := new(cpb.MetaGraphDef)
	if err := proto.Unmarshal(bufferBytes(meta), mg); err != nil {
		s.Close()
		g.Close()
		return nil, nil, fmt.Errorf("decoding the MetaGraphDef of %s: %w", exportDir, err)
	}
	return s, mg, nil
}
