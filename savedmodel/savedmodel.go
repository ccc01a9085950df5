package savedmodel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// The names TensorFlow gives the parts of a SavedModel directory
// (tensorflow/cc/saved_model/constants.h) and its well-known keys
// (signature_constants.py, tag_constants.py).
const (
	SavedModelFilename     = "saved_model.pb"
	SavedModelFilenameText = "saved_model.pbtxt"
	// SavedModelFilenameChunked is the proto-splitter format of models
	// over 2 GiB, which this package does not read.
	SavedModelFilenameChunked = "saved_model.cpb"
	VariablesDirectory        = "variables"
	VariablesFilename         = "variables"
	AssetsDirectory           = "assets"
	AssetsExtraDirectory      = "assets.extra"
	FingerprintFilename       = "fingerprint.pb"

	// TagServe is the tag of the meta graph TensorFlow Serving loads.
	TagServe = "serve"
	TagTrain = "train"

	// DefaultServingSignature is the signature TensorFlow Serving and
	// Python's loaders use when none is named.
	DefaultServingSignature = "serving_default"
	PredictMethodName       = "tensorflow/serving/predict"
	ClassifyMethodName      = "tensorflow/serving/classify"
	RegressMethodName       = "tensorflow/serving/regress"

	// InitOpSignatureKey names the SignatureDef whose only output is the
	// op to run once the variables are restored (TF2-era builders); its
	// output key is the same string.
	InitOpSignatureKey = "__saved_model_init_op"
	// MainOpCollection and LegacyInitOpCollection hold the init op in
	// older TF1 exports.
	MainOpCollection       = "saved_model_main_op"
	LegacyInitOpCollection = "legacy_init_op"
	// AssetFilepathsCollection is tf.GraphKeys.ASSET_FILEPATHS: the
	// string constants holding the assets' paths when the graph was built.
	AssetFilepathsCollection = "asset_filepaths"
	// AssetsCollection holds the AssetFileDefs (as Any) of TF1 exports
	// whose meta graph has no asset_file_def (tf.compat.v1's Builder);
	// TensorFlow's loader reads it when asset_file_def is empty.
	AssetsCollection = "saved_model_assets"

	// SchemaVersion is the saved_model_schema_version TensorFlow writes.
	SchemaVersion = 1
)

// VariablesPrefix is the bundle prefix of a SavedModel's variables,
// dir/variables/variables.
func VariablesPrefix(dir string) string {
	return filepath.Join(dir, VariablesDirectory, VariablesFilename)
}

// ReadSavedModel reads the SavedModel proto of the directory dir, from
// saved_model.pb or else saved_model.pbtxt. A missing directory or file, a
// file that does not parse, and a SavedModel without meta graphs are
// *Error values naming the file (errors.Is finds fs.ErrNotExist,
// ErrCorrupt, ErrUnsupported, or ErrTooLarge for a file over
// MaxSavedModelBytes).
func ReadSavedModel(dir string) (*cpb.SavedModel, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, &Error{Op: "open", File: dir, Err: err}
	} else if !fi.IsDir() {
		return nil, &Error{Op: "open", File: dir, Err: errors.New("not a directory")}
	}
	path := filepath.Join(dir, SavedModelFilename)
	data, err := readFileLimited(path, MaxSavedModelBytes)
	text := false
	if errors.Is(err, fs.ErrNotExist) {
		tpath := filepath.Join(dir, SavedModelFilenameText)
		if d, terr := readFileLimited(tpath, MaxSavedModelBytes); terr == nil || !errors.Is(terr, fs.ErrNotExist) {
			path, data, err, text = tpath, d, terr, true
		} else if _, cerr := os.Stat(filepath.Join(dir, SavedModelFilenameChunked)); cerr == nil {
			return nil, &Error{Op: "read", File: filepath.Join(dir, SavedModelFilenameChunked),
				Err: fmt.Errorf("%w: chunked SavedModels (over 2 GiB) are not supported", ErrUnsupported)}
		} else {
			return nil, &Error{Op: "read", File: path, Err: fmt.Errorf("not a SavedModel directory (no %s or %s): %w",
				SavedModelFilename, SavedModelFilenameText, fs.ErrNotExist)}
		}
	}
	if err != nil {
		return nil, &Error{Op: "read", File: path, Err: err}
	}
	sm := new(cpb.SavedModel)
	if text {
		err = prototext.Unmarshal(data, sm)
	} else {
		err = proto.Unmarshal(data, sm)
	}
	if err != nil {
		return nil, &Error{Op: "read", File: path, Err: corruptf("not a SavedModel proto: %v", err)}
	}
	if len(sm.GetMetaGraphs()) == 0 {
		return nil, &Error{Op: "read", File: path, Err: corruptf("the SavedModel has no meta graph (%d bytes)", len(data))}
	}
	return sm, nil
}

// FindMetaGraph returns the meta graph whose set of tags is exactly tags,
// as TensorFlow's loader picks it; the error lists the tag sets there are.
func FindMetaGraph(sm *cpb.SavedModel, tags ...string) (*cpb.MetaGraphDef, error) {
	want := tagSet(tags)
	var have []string
	for _, mg := range sm.GetMetaGraphs() {
		got := tagSet(mg.GetMetaInfoDef().GetTags())
		if slices.Equal(got, want) {
			return mg, nil
		}
		have = append(have, "{"+strings.Join(got, ", ")+"}")
	}
	return nil, fmt.Errorf("%w: no meta graph with the tags {%s}; the SavedModel has %s",
		ErrNotFound, strings.Join(want, ", "), strings.Join(have, ", "))
}

func tagSet(tags []string) []string {
	s := slices.Clone(tags)
	sort.Strings(s)
	return slices.Compact(s)
}

// ReadMetaGraph reads the SavedModel in dir and returns its meta graph
// tagged tags after checking that the files it needs are there: the
// variables' bundle (index and data shards) when it has a SaverDef, and
// every asset its asset_file_def names. Each problem is an *Error naming
// the missing or damaged file, so that a broken directory is reported
// before any runtime tries to load it.
func ReadMetaGraph(dir string, tags ...string) (*cpb.MetaGraphDef, error) {
	sm, err := ReadSavedModel(dir)
	if err != nil {
		return nil, err
	}
	mg, err := FindMetaGraph(sm, tags...)
	if err != nil {
		return nil, &Error{Op: "read", File: filepath.Join(dir, SavedModelFilename), Err: err}
	}
	if mg.GetSaverDef().GetRestoreOpName() != "" {
		prefix := VariablesPrefix(dir)
		r, err := OpenBundle(prefix)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && errors.Is(err, fs.ErrNotExist) {
				return nil, &Error{Op: "read", File: e.File, Err: fmt.Errorf("the variables' bundle is missing (the meta graph's SaverDef restores them from it): %w", fs.ErrNotExist)}
			}
			return nil, err
		}
		n := int(r.Header().GetNumShards())
		r.Close()
		for i := range n {
			if _, err := os.Stat(DataFilename(prefix, i, n)); err != nil {
				return nil, &Error{Op: "read", File: DataFilename(prefix, i, n), Err: fmt.Errorf("a data shard of the variables is missing: %w", err)}
			}
		}
	}
	assets, where, err := AssetFileDefs(mg)
	if err != nil {
		return nil, &Error{Op: "read", File: filepath.Join(dir, SavedModelFilename), Err: err}
	}
	fed := map[string]string{}
	for _, a := range assets {
		tensor := a.GetTensorInfo().GetName()
		if !plainFileName(a.GetFilename()) {
			// The loader would feed assets/<filename> to the graph, which
			// reads it: "../" would make the model read any file.
			return nil, &Error{Op: "read", File: filepath.Join(dir, SavedModelFilename),
				Err: corruptf("the meta graph's %s give the asset tensor %s the file name %q, not a plain file name under %s/", where, tensor, a.GetFilename(), AssetsDirectory)}
		}
		path := filepath.Join(dir, AssetsDirectory, a.GetFilename())
		if prev, ok := fed[tensor]; ok {
			if prev == a.GetFilename() {
				continue // the same asset again: see DuplicateAssets
			}
			return nil, &Error{Op: "read", File: filepath.Join(dir, SavedModelFilename),
				Err: fmt.Errorf("%w: the meta graph's %s give the asset tensor %s two files, %s and %s", ErrUnsupported, where, tensor, prev, a.GetFilename())}
		}
		fed[tensor] = a.GetFilename()
		if _, err := os.Stat(path); err != nil {
			return nil, &Error{Op: "read", File: path, Err: fmt.Errorf("asset of %s: %w", tensor, err)}
		}
	}
	return mg, nil
}

// plainFileName reports whether name names a file in a directory itself,
// not one elsewhere through a separator, "." or "..".
func plainFileName(name string) bool {
	return name != "" && name == filepath.Base(name) && name != "." && name != ".."
}

// DuplicateAssets reports whether the assets of mg (AssetFileDefs) list
// one asset twice, as TF1 exports do that add a vocabulary's path to the
// asset_filepaths collection TextFileInitializer already added it to.
// Python's loader takes such a SavedModel; TensorFlow's C++ loader (TF
// Serving's, and the C API's) feeds every entry and fails with "fed more
// than once": DedupAssets removes the repeats.
func DuplicateAssets(mg *cpb.MetaGraphDef) bool {
	defs, _, err := AssetFileDefs(mg)
	if err != nil {
		return false
	}
	seen := map[string]bool{}
	for _, a := range defs {
		if seen[a.GetTensorInfo().GetName()] {
			return true
		}
		seen[a.GetTensorInfo().GetName()] = true
	}
	return false
}

// DedupAssets removes from every meta graph of sm the entries of its
// asset_file_def and saved_model_assets collection that repeat an earlier
// entry of the same tensor and file; it returns how many it removed.
func DedupAssets(sm *cpb.SavedModel) int {
	removed := 0
	for _, mg := range sm.GetMetaGraphs() {
		seen := map[string]bool{}
		keep := mg.AssetFileDef[:0]
		for _, a := range mg.GetAssetFileDef() {
			k := a.GetTensorInfo().GetName() + "\x00" + a.GetFilename()
			if seen[k] {
				removed++
				continue
			}
			seen[k] = true
			keep = append(keep, a)
		}
		mg.AssetFileDef = keep
		list := mg.GetCollectionDef()[AssetsCollection].GetAnyList()
		if list == nil {
			continue
		}
		seen = map[string]bool{}
		var vals = list.Value[:0]
		for _, v := range list.GetValue() {
			d := new(cpb.AssetFileDef)
			if err := v.UnmarshalTo(d); err == nil {
				k := d.GetTensorInfo().GetName() + "\x00" + d.GetFilename()
				if seen[k] {
					removed++
					continue
				}
				seen[k] = true
			}
			vals = append(vals, v)
		}
		list.Value = vals
	}
	return removed
}

// AssetFileDefs returns the assets of a meta graph as TensorFlow's loader
// finds them: its asset_file_def, or when that is empty the
// saved_model_assets collection of older TF1 exports; where says which.
func AssetFileDefs(mg *cpb.MetaGraphDef) (defs []*cpb.AssetFileDef, where string, err error) {
	if len(mg.GetAssetFileDef()) > 0 {
		return mg.GetAssetFileDef(), "asset_file_def", nil
	}
	col, ok := mg.GetCollectionDef()[AssetsCollection]
	if !ok {
		return nil, "asset_file_def", nil
	}
	where = "collection " + AssetsCollection
	for i, a := range col.GetAnyList().GetValue() {
		d := new(cpb.AssetFileDef)
		if err := a.UnmarshalTo(d); err != nil {
			return nil, where, corruptf("%s: entry %d is not an AssetFileDef: %v", where, i, err)
		}
		defs = append(defs, d)
	}
	return defs, where, nil
}

// Asset is a file a SavedModel carries under assets/ (a vocabulary, ...).
type Asset struct {
	// Filename is its name in assets/, as asset_file_def records it.
	Filename string
	// Source is the file copied there.
	Source string
}

// Directory is the content of a SavedModel directory, for Write,
// WriteContents and Publish.
type Directory struct {
	// SavedModel is written to saved_model.pb (deterministically).
	SavedModel *cpb.SavedModel
	// Variables are written as the bundle variables/variables, under
	// their keys (the names the SaverDef's restore op reads).
	Variables map[string]*Tensor
	// WriteVariables, when set, writes the variables instead, one tensor
	// at a time, so that they need not all be in memory at once.
	WriteVariables func(w *BundleWriter) error
	// Assets are copied into assets/.
	Assets []Asset
}

// WriteContents writes d into dir, an existing (normally empty)
// directory: variables/ (the bundle, or an empty directory when there are
// no variables), assets/, saved_model.pb and last fingerprint.pb, each file
// synced to disk. It is not atomic; Write and Publish call it in a
// temporary directory that they rename into place.
func WriteContents(dir string, d *Directory) error {
	if d == nil || d.SavedModel == nil {
		return &Error{Op: "write", File: dir, Err: errors.New("no SavedModel proto to write")}
	}
	vdir := filepath.Join(dir, VariablesDirectory)
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return &Error{Op: "write", File: vdir, Err: err}
	}
	if d.WriteVariables != nil || len(d.Variables) > 0 {
		w, err := NewBundleWriter(VariablesPrefix(dir), WriteOptions{})
		if err != nil {
			return err
		}
		if d.WriteVariables != nil {
			err = d.WriteVariables(w)
		}
		names := make([]string, 0, len(d.Variables))
		for k := range d.Variables {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if err != nil {
				break
			}
			err = w.Add(k, d.Variables[k])
		}
		if err != nil {
			w.Abort()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	if len(d.Assets) > 0 {
		adir := filepath.Join(dir, AssetsDirectory)
		if err := os.MkdirAll(adir, 0o755); err != nil {
			return &Error{Op: "write", File: adir, Err: err}
		}
		seen := map[string]bool{}
		for _, a := range d.Assets {
			if !plainFileName(a.Filename) {
				return &Error{Op: "write", File: adir, Err: fmt.Errorf("asset filename %q must be a plain file name", a.Filename)}
			}
			if seen[a.Filename] {
				return &Error{Op: "write", File: filepath.Join(adir, a.Filename), Err: errors.New("two assets have this name")}
			}
			seen[a.Filename] = true
			if err := copyFileSync(a.Source, filepath.Join(adir, a.Filename)); err != nil {
				return err
			}
		}
		syncDir(adir)
	}
	syncDir(vdir)
	b, err := MarshalCanonical(d.SavedModel)
	if err != nil {
		return &Error{Op: "write", File: filepath.Join(dir, SavedModelFilename), Err: err}
	}
	if err := writeFileSync(filepath.Join(dir, SavedModelFilename), b); err != nil {
		return err
	}
	if err := writeFingerprint(dir, d.SavedModel); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// Write writes d as a new SavedModel directory dir, atomically: the
// content goes to a hidden temporary directory next to dir (".NAME.tmp-*"),
// is synced to disk, and is renamed to dir only when complete, so dir
// either does not exist or holds the whole SavedModel, even after a crash
// (which at worst leaves the temporary directory behind). dir must not
// exist yet.
func Write(dir string, d *Directory) error {
	return publishDir(dir, func(tmp string) error { return WriteContents(tmp, d) })
}

// publishDir fills a temporary sibling of final and renames it to final.
func publishDir(final string, fill func(dir string) error) error {
	if fill == nil {
		return &Error{Op: "write", File: final, Err: errors.New("nil fill function")}
	}
	final = filepath.Clean(final)
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return &Error{Op: "write", File: parent, Err: err}
	}
	if _, err := os.Lstat(final); err == nil {
		return &Error{Op: "write", File: final, Err: fmt.Errorf("the export directory already exists: %w", fs.ErrExist)}
	}
	own := regexp.MustCompile(`^\.` + regexp.QuoteMeta(filepath.Base(final)) + `\.tmp-\d+$`)
	removeStale(parent, own.MatchString)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(final)+".tmp-")
	if err != nil {
		return &Error{Op: "write", File: final, Err: err}
	}
	// Held until the rename: the temporary directory is a live writer's.
	lock := lockTemp(tmp)
	defer unlockTemp(lock)
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return &Error{Op: "write", File: tmp, Err: err}
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	// Sync every directory of the tree: their entries (the files were
	// synced as they were written) must be on disk before the rename.
	filepath.WalkDir(tmp, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			syncDir(p)
		}
		return nil
	})
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) /* EEXIST or ENOTEMPTY */ {
			err = fmt.Errorf("the export directory already exists: %w", fs.ErrExist)
		}
		return &Error{Op: "commit", File: final, Err: err}
	}
	syncDir(parent)
	return nil
}

// writeFileSync writes a new file and syncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return &Error{Op: "write", File: path, Err: err}
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &Error{Op: "write", File: path, Err: err}
	}
	return nil
}

// copyFileSync copies src to a new file dst and syncs it.
func copyFileSync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return &Error{Op: "write", File: dst, Err: fmt.Errorf("asset source: %w", err)}
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return &Error{Op: "write", File: dst, Err: err}
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &Error{Op: "write", File: dst, Err: err}
	}
	return nil
}
