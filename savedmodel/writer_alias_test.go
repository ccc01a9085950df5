package savedmodel

import (
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/dtypes"
)

// An alias reads back as the tensor it names, with its data stored once;
// aliases of nothing and second uses of a key are refused. (TensorFlow
// reading both keys of one file is checked by keraslike's checkpoint
// tests through Python.)
func TestBundleWriterAddAlias(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "b")
	w, err := NewBundleWriter(prefix, WriteOptions{NumShards: 2})
	if err != nil {
		t.Fatal(err)
	}
	a := &Tensor{DType: dtypes.Float, Shape: []int64{3}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	if err := w.Add("a", a); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("c", &Tensor{DType: dtypes.Int64, Data: make([]byte, 8)}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddAlias("a/.ATTRIBUTES/VARIABLE_VALUE", "a"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"x", "missing"}, {"a", "c"}, {"c", "a"}, {"a/.ATTRIBUTES/VARIABLE_VALUE", "c"}, {"", "a"}} {
		if err := w.AddAlias(bad[0], bad[1]); err == nil {
			t.Errorf("AddAlias(%q, %q) succeeded", bad[0], bad[1])
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.AddAlias("y", "a"); err == nil {
		t.Error("AddAlias after Close succeeded")
	}
	r, err := OpenBundle(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Names(); len(got) != 3 {
		t.Errorf("names %q, want a, its alias and c", got)
	}
	ea, _ := r.EntryProto("a")
	ez, _ := r.EntryProto("a/.ATTRIBUTES/VARIABLE_VALUE")
	if ea.GetShardId() != ez.GetShardId() || ea.GetOffset() != ez.GetOffset() || ea.GetSize() != ez.GetSize() {
		t.Errorf("the alias is stored apart: %v, %v", ea, ez)
	}
	got, err := r.Read("a/.ATTRIBUTES/VARIABLE_VALUE")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != string(a.Data) || len(got.Shape) != 1 || got.Shape[0] != 3 || got.DType != dtypes.Float {
		t.Errorf("alias reads %v %v %v, want %v %v %v", got.DType, got.Shape, got.Data, a.DType, a.Shape, a.Data)
	}
}
