package savedmodel

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"math/bits"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	fnpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	"github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"github.com/wamuir/graft/tensorflow/core/framework/versions_go_proto"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// fingerprintProducer is the version.producer TensorFlow 2.21 records in
// the fingerprints it writes (the version of its fingerprinting code).
const fingerprintProducer = 4

// fingerprintUUIDField is the number of FingerprintDef.uuid, a field of
// TensorFlow 2.21's fingerprint.proto that the generated Go types in graft
// predate; it is carried as an unknown field.
const fingerprintUUIDField = 7

// Fingerprint computes the fingerprint of the SavedModel directory dir, as
// TensorFlow 2.21 does when it saves one (fingerprint.pb,
// tf.saved_model.experimental.read_fingerprint):
//
//   - saved_model_checksum: the farmhash Fingerprint64 of the SavedModel
//     proto serialized canonically (the bytes of saved_model.pb as
//     TensorFlow and Write write it);
//   - graph_def_program_hash: the same of the first meta graph's GraphDef
//     once regularized (function library and versions cleared, the UID
//     suffix of the functions called by (Stateful)PartitionedCall nodes
//     stripped and their config_proto emptied, the values of string
//     constants cleared);
//   - signature_def_hash: the signatures' keys and SignatureDefs, in key
//     order, combined with FingerprintCat64;
//   - saved_object_graph_hash: the object graph's concrete functions, in
//     the order of their names' UID suffixes (0 for a TF1-style model);
//   - checkpoint_hash: Fingerprint64 of variables/variables.index (0
//     without one);
//   - a random uuid (a 128-bit number in decimal) and version.producer 4.
//
// Every field but the uuid is a pure function of the files, equal to what
// TensorFlow 2.21 computes for the same directory (hashes of protos are
// taken of their canonical serialization, MarshalCanonical).
func Fingerprint(dir string) (*cpb.FingerprintDef, error) {
	path := filepath.Join(dir, SavedModelFilename)
	data, err := readFileLimited(path, MaxSavedModelBytes)
	if err != nil {
		return nil, &Error{Op: "fingerprint", File: path, Err: err}
	}
	sm := new(cpb.SavedModel)
	if err := proto.Unmarshal(data, sm); err != nil {
		return nil, &Error{Op: "fingerprint", File: path, Err: corruptf("not a SavedModel proto: %v", err)}
	}
	fp, err := fingerprintOf(sm, dir)
	if err != nil {
		return nil, &Error{Op: "fingerprint", File: path, Err: err}
	}
	return fp, nil
}

func fingerprintOf(sm *cpb.SavedModel, dir string) (*cpb.FingerprintDef, error) {
	if len(sm.GetMetaGraphs()) == 0 {
		return nil, corruptf("the SavedModel has no meta graph")
	}
	b, err := MarshalCanonical(sm)
	if err != nil {
		return nil, err
	}
	fp := &cpb.FingerprintDef{
		SavedModelChecksum: Fingerprint64(b),
		Version:            &versions_go_proto.VersionDef{Producer: fingerprintProducer},
	}
	mg := sm.GetMetaGraphs()[0]

	gd := &graphpb.GraphDef{}
	if mg.GetGraphDef() != nil {
		gd = proto.Clone(mg.GetGraphDef()).(*graphpb.GraphDef)
	}
	regularizeGraphDef(gd)
	if b, err = MarshalCanonical(gd); err != nil {
		return nil, err
	}
	fp.GraphDefProgramHash = Fingerprint64(b)

	keys := make([]string, 0, len(mg.GetSignatureDef()))
	for k := range mg.GetSignatureDef() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var h uint64
	for _, k := range keys {
		h = FingerprintCat64(h, Fingerprint64([]byte(k)))
		if b, err = MarshalCanonical(mg.GetSignatureDef()[k]); err != nil {
			return nil, err
		}
		h = FingerprintCat64(h, Fingerprint64(b))
	}
	fp.SignatureDefHash = h

	if fp.SavedObjectGraphHash, err = hashObjectGraph(mg.GetObjectGraphDef()); err != nil {
		return nil, err
	}
	index, err := readFileLimited(IndexFilename(VariablesPrefix(dir)), DefaultMaxIndexBytes)
	switch {
	case err == nil:
		fp.CheckpointHash = Fingerprint64(index)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &Error{Op: "fingerprint", File: IndexFilename(VariablesPrefix(dir)), Err: err}
	}
	// TensorFlow's uuid is a random 128-bit number in decimal.
	var id [16]byte
	rand.Read(id[:])
	uuid := new(big.Int).SetBytes(id[:]).String()
	var unknown []byte
	unknown = protowire.AppendTag(unknown, fingerprintUUIDField, protowire.BytesType)
	unknown = protowire.AppendString(unknown, uuid)
	fp.ProtoReflect().SetUnknown(unknown)
	return fp, nil
}

// FingerprintUUID returns the uuid of a fingerprint (TensorFlow 2.21's
// field 7), or "".
func FingerprintUUID(fp *cpb.FingerprintDef) string {
	b := fp.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == fingerprintUUIDField && typ == protowire.BytesType {
			s, m := protowire.ConsumeString(b)
			if m < 0 {
				return ""
			}
			return s
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return ""
		}
		b = b[m:]
	}
	return ""
}

// ReadFingerprint reads dir/fingerprint.pb.
func ReadFingerprint(dir string) (*cpb.FingerprintDef, error) {
	path := filepath.Join(dir, FingerprintFilename)
	data, err := readFileLimited(path, MaxFingerprintBytes)
	if err != nil {
		return nil, &Error{Op: "read", File: path, Err: err}
	}
	fp := new(cpb.FingerprintDef)
	if err := proto.Unmarshal(data, fp); err != nil {
		return nil, &Error{Op: "read", File: path, Err: corruptf("not a FingerprintDef proto: %v", err)}
	}
	return fp, nil
}

// Singleprint is the fingerprint's canonical ID, as
// tf.saved_model.experimental.Fingerprint.singleprint() gives it:
// "graph_def_program_hash/signature_def_hash/saved_object_graph_hash/checkpoint_hash".
func Singleprint(fp *cpb.FingerprintDef) string {
	return fmt.Sprintf("%d/%d/%d/%d", fp.GetGraphDefProgramHash(), fp.GetSignatureDefHash(),
		fp.GetSavedObjectGraphHash(), fp.GetCheckpointHash())
}

// regularizeGraphDef is TensorFlow's graph_regularization::SimpleDelete.
func regularizeGraphDef(gd *graphpb.GraphDef) {
	for _, n := range gd.GetNode() {
		if n.GetOp() == "PartitionedCall" || n.GetOp() == "StatefulPartitionedCall" {
			if f := n.GetAttr()["f"].GetFunc(); f != nil {
				if uid, ok := suffixUID(f.GetName()); ok {
					f.Name = strings.TrimSuffix(f.GetName(), strconv.FormatInt(uid, 10))
				}
			}
			if _, ok := n.GetAttr()["config_proto"]; ok {
				n.Attr["config_proto"] = &attrpb.AttrValue{Value: &attrpb.AttrValue_S{S: []byte{}}}
			}
		}
		if n.GetOp() == "Const" && n.GetAttr()["dtype"].GetType() == types_go_proto.DataType_DT_STRING {
			if _, ok := n.GetAttr()["value"]; ok {
				n.Attr["value"] = &attrpb.AttrValue{}
			}
		}
	}
	// Cleared, not removed: both stay present as empty messages.
	gd.Library = &fnpb.FunctionDefLibrary{}
	gd.Versions = &versions_go_proto.VersionDef{}
}

// suffixUID parses the integer after a function name's last '_'
// (graph_regularization::GetSuffixUID).
func suffixUID(name string) (int64, bool) {
	s := name[strings.LastIndexByte(name, '_')+1:]
	uid, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return uid, err == nil
}

func hashObjectGraph(og *cpb.SavedObjectGraph) (uint64, error) {
	type fn struct {
		uid  int64
		name string
	}
	byUID := map[int64]string{}
	for name := range og.GetConcreteFunctions() {
		uid, ok := suffixUID(name)
		if !ok {
			return 0, fmt.Errorf("function name: `%s` does not end in an integer", name)
		}
		// TensorFlow keeps the first name inserted for a UID; its map order
		// is unspecified, so take the smallest name for a deterministic result.
		if old, dup := byUID[uid]; !dup || name < old {
			byUID[uid] = name
		}
	}
	fns := make([]fn, 0, len(byUID))
	for uid, name := range byUID {
		fns = append(fns, fn{uid, name})
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].uid < fns[j].uid })
	var h uint64
	for _, f := range fns {
		h = FingerprintCat64(h, Fingerprint64([]byte(strings.TrimSuffix(f.name, strconv.FormatInt(f.uid, 10)))))
		b, err := MarshalCanonical(og.GetConcreteFunctions()[f.name])
		if err != nil {
			return 0, err
		}
		h = FingerprintCat64(h, Fingerprint64(b))
	}
	return h, nil
}

// writeFingerprint writes dir/fingerprint.pb for the SavedModel written in dir.
func writeFingerprint(dir string, sm *cpb.SavedModel) error {
	path := filepath.Join(dir, FingerprintFilename)
	fp, err := fingerprintOf(sm, dir)
	if err != nil {
		return &Error{Op: "write", File: path, Err: err}
	}
	b, err := MarshalCanonical(fp)
	if err != nil {
		return &Error{Op: "write", File: path, Err: err}
	}
	return writeFileSync(path, b)
}

// FingerprintCat64 combines two fingerprints as TensorFlow's
// tsl::FingerprintCat64 does (not commutative).
func FingerprintCat64(fp1, fp2 uint64) uint64 {
	const mul = 0xc6a4a7935bd1e995
	r := fp1 ^ mul
	r ^= shiftMix(fp2*mul) * mul
	r *= mul
	r = shiftMix(r) * mul
	return shiftMix(r)
}

// Fingerprint64 is farmhash's Fingerprint64 (farmhashna::Hash64), the
// portable 64-bit fingerprint TensorFlow uses (tsl::Fingerprint64, the
// Fingerprint op's "farmhash64" method).
func Fingerprint64(s []byte) uint64 {
	n := uint64(len(s))
	switch {
	case n <= 16:
		return hashLen0to16(s)
	case n <= 32:
		return hashLen17to32(s)
	case n <= 64:
		return hashLen33to64(s)
	}
	x := uint64(81) // the seed
	y := x*k1 + 113
	z := shiftMix(y*k2+113) * k2
	var v, w [2]uint64
	x = x*k2 + fetch64(s, 0)
	// Whole 64-byte blocks, leaving 1 to 64 bytes; then the last 64 bytes.
	end := ((n - 1) / 64) * 64
	last64 := n - 64
	for off := uint64(0); off != end; off += 64 {
		x = rot(x+y+v[0]+fetch64(s, off+8), 37) * k1
		y = rot(y+v[1]+fetch64(s, off+48), 42) * k1
		x ^= w[1]
		y += v[0] + fetch64(s, off+40)
		z = rot(z+w[0], 33) * k1
		v = weakHashLen32WithSeeds(s, off, v[1]*k1, x+w[0])
		w = weakHashLen32WithSeeds(s, off+32, z+w[1], y+fetch64(s, off+16))
		z, x = x, z
	}
	mul := k1 + ((z & 0xff) << 1)
	off := last64
	w[0] += (n - 1) & 63
	v[0] += w[0]
	w[0] += v[0]
	x = rot(x+y+v[0]+fetch64(s, off+8), 37) * mul
	y = rot(y+v[1]+fetch64(s, off+48), 42) * mul
	x ^= w[1] * 9
	y += v[0]*9 + fetch64(s, off+40)
	z = rot(z+w[0], 33) * mul
	v = weakHashLen32WithSeeds(s, off, v[1]*mul, x+w[0])
	w = weakHashLen32WithSeeds(s, off+32, z+w[1], y+fetch64(s, off+16))
	z, x = x, z
	return hashLen16Mul(hashLen16Mul(v[0], w[0], mul)+shiftMix(y)*k0+z,
		hashLen16Mul(v[1], w[1], mul)+x, mul)
}

// farmhash's primes.
const (
	k0 uint64 = 0xc3a5c85c97cb3127
	k1 uint64 = 0xb492b66fbe98f273
	k2 uint64 = 0x9ae16a3b2f90404f
)

func fetch64(s []byte, off uint64) uint64 { return binary.LittleEndian.Uint64(s[off:]) }
func fetch32(s []byte, off uint64) uint64 { return uint64(binary.LittleEndian.Uint32(s[off:])) }
func rot(v uint64, r int) uint64          { return bits.RotateLeft64(v, -r) }
func shiftMix(v uint64) uint64            { return v ^ (v >> 47) }

func hashLen16Mul(u, v, mul uint64) uint64 {
	a := (u ^ v) * mul
	a ^= a >> 47
	b := (v ^ a) * mul
	b ^= b >> 47
	return b * mul
}

func hashLen0to16(s []byte) uint64 {
	n := uint64(len(s))
	if n >= 8 {
		mul := k2 + n*2
		a := fetch64(s, 0) + k2
		b := fetch64(s, n-8)
		c := rot(b, 37)*mul + a
		d := (rot(a, 25) + b) * mul
		return hashLen16Mul(c, d, mul)
	}
	if n >= 4 {
		mul := k2 + n*2
		a := fetch32(s, 0)
		return hashLen16Mul(n+(a<<3), fetch32(s, n-4), mul)
	}
	if n > 0 {
		a, b, c := uint32(s[0]), uint32(s[n>>1]), uint32(s[n-1])
		y := a + b<<8
		z := uint32(n) + c<<2
		return shiftMix(uint64(y)*k2^uint64(z)*k0) * k2
	}
	return k2
}

func hashLen17to32(s []byte) uint64 {
	n := uint64(len(s))
	mul := k2 + n*2
	a := fetch64(s, 0) * k1
	b := fetch64(s, 8)
	c := fetch64(s, n-8) * mul
	d := fetch64(s, n-16) * k2
	return hashLen16Mul(rot(a+b, 43)+rot(c, 30)+d, a+rot(b+k2, 18)+c, mul)
}

func hashLen33to64(s []byte) uint64 {
	n := uint64(len(s))
	mul := k2 + n*2
	a := fetch64(s, 0) * k2
	b := fetch64(s, 8)
	c := fetch64(s, n-8) * mul
	d := fetch64(s, n-16) * k2
	y := rot(a+b, 43) + rot(c, 30) + d
	z := hashLen16Mul(y, a+rot(b+k2, 18)+c, mul)
	e := fetch64(s, 16) * mul
	f := fetch64(s, 24)
	g := (y + fetch64(s, n-32)) * mul
	h := (z + fetch64(s, n-24)) * mul
	return hashLen16Mul(rot(e+f, 43)+rot(g, 30)+h, e+rot(f+a, 18)+g, mul)
}

func weakHashLen32WithSeeds(s []byte, off, a, b uint64) [2]uint64 {
	w, x, y, z := fetch64(s, off), fetch64(s, off+8), fetch64(s, off+16), fetch64(s, off+24)
	a += w
	b = rot(b+a+z, 21)
	c := a
	a += x
	a += y
	b += rot(a, 44)
	return [2]uint64{a + z, b + c}
}
