package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gotf/gotf/internal/excerpt"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
	"github.com/spf13/cobra"
)

type runFlags struct {
	tagSet, signature          string
	inputs, inputExprs, inJSON string
	outdir                     string
	overwrite                  bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run DIR",
		Short: "Run a SavedModel signature on given inputs, as saved_model_cli run",
		Long: `Loads the SavedModel in DIR (or the latest version of a TF Serving base
directory) on the TensorFlow runtime, runs one signature
and prints each output ("Result for output key K:" and the values), or with
--outdir also writes each as K.npy, as saved_model_cli run does.

Inputs, each converted to the dtype the signature takes (as numpy.asarray
does when a session is fed), are given by one or more of:
  --inputs      'x=in.npy;y=in.npz[name]'   .npy or .npz files (no pickles)
  --input_exprs 'x=[[1,2]];y=3'              Python literals (ast.literal_eval:
                                             nested lists/tuples of numbers,
                                             True/False, strings)
  --input_json  '{"x": [[1,2]]}'             a JSON object from input key to
                                             value; @file reads it from a file
A key given twice takes the value of the later flag in that order, as
saved_model_cli lets --input_exprs win over --inputs.`,
		Example: `  gotf run export/1 --input_exprs 'x=[[1.0, 2.0, 3.0]]'
  gotf run export/1 --signature_def serving_default --inputs 'x=batch.npy' --outdir out/
  gotf run export/1 --input_json '{"x": [[1, 2, 3]], "k": 2}' --signature_def scaled
  gotf run export/1 --input_json @request.json`,
		Args: exactArgs(1, "one SavedModel DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSignature(cmd.OutOrStdout(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.tagSet, "tag_set", "serve", "the meta graph's tags, comma-separated")
	fl.StringVar(&f.signature, "signature_def", "serving_default", "the signature to run")
	fl.StringVar(&f.inputs, "inputs", "", "inputs from files: 'key=file.npy;key=file.npz[name]'")
	fl.StringVar(&f.inputExprs, "input_exprs", "", "inputs as Python literals: 'key=[[1,2]];key2=3'")
	fl.StringVar(&f.inJSON, "input_json", "", "inputs as a JSON object {key: value}, or @file")
	fl.StringVar(&f.outdir, "outdir", "", "also write each output as OUTDIR/<key>.npy")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace existing .npy files in --outdir")
	return cmd
}

var (
	reInputFileNamed = regexp.MustCompile(`^([^=]+)=([^\[\]]+)\[([^\[\]]+)\]$`)
	reInputFile      = regexp.MustCompile(`^([^=]+)=([^\[\]]+)$`)
)

// parseInputs turns the three input flags into arrays by input key. Syntax
// errors are usage errors; a file that cannot be read is not.
func parseInputs(f runFlags) (map[string]*array, error) {
	out := map[string]*array{}
	for _, item := range strings.Split(f.inputs, ";") {
		if item == "" {
			continue
		}
		var key, file, name string
		if m := reInputFileNamed.FindStringSubmatch(item); m != nil {
			key, file, name = m[1], m[2], m[3]
		} else if m := reInputFile.FindStringSubmatch(item); m != nil {
			key, file = m[1], m[2]
		} else {
			return nil, usagef("--inputs %s: want <key>=<file> or <key>=<file>[<name>]", excerpt.Quote(item))
		}
		a, err := loadInputFile(file, name)
		if err != nil {
			return nil, fmt.Errorf("--inputs %s: %w", key, err)
		}
		out[key] = a
	}
	for _, item := range strings.Split(f.inputExprs, ";") {
		if item == "" {
			continue
		}
		key, expr, ok := strings.Cut(item, "=")
		if !ok || key == "" {
			return nil, usagef("--input_exprs %s: want <key>=<python literal>", excerpt.Quote(item))
		}
		v, err := parsePyLiteral(expr)
		if err != nil {
			return nil, usagef("--input_exprs %s: %v", key, err)
		}
		a, err := toArray(v)
		if err != nil {
			return nil, usagef("--input_exprs %s: %v", key, err)
		}
		out[key] = a
	}
	if f.inJSON != "" {
		data := []byte(f.inJSON)
		if file, ok := strings.CutPrefix(f.inJSON, "@"); ok {
			fi, err := os.Stat(file)
			if err != nil {
				return nil, fmt.Errorf("--input_json: %w", err)
			}
			if fi.Size() > maxInputFileBytes {
				return nil, fmt.Errorf("--input_json: %s: %d bytes, over the %d an input file may have", file, fi.Size(), int64(maxInputFileBytes))
			}
			if data, err = os.ReadFile(file); err != nil {
				return nil, fmt.Errorf("--input_json: %w", err)
			}
		}
		v, err := parseJSONValue(data)
		if err != nil {
			return nil, usagef("--input_json: %v", err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, usagef("--input_json: want an object from input key to value, got %s", excerpt.Of(f.inJSON))
		}
		for _, key := range sortedKeys(obj) {
			a, err := toArray(obj[key])
			if err != nil {
				return nil, usagef("--input_json %s: %v", excerpt.Quote(key), err)
			}
			out[key] = a
		}
	}
	return out, nil
}

func runSignature(w io.Writer, dir string, f runFlags) error {
	inputs, err := parseInputs(f)
	if err != nil {
		return err
	}
	if len(inputs) == 0 {
		return usagef("no inputs: give --inputs, --input_exprs or --input_json")
	}
	var tags []string
	for _, t := range strings.Split(f.tagSet, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	// The pure-Go reader says what is wrong with a directory (missing,
	// not a SavedModel, a missing variables shard) before the runtime,
	// whose errors span lines, is asked to load it.
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	_, dir, err = detectSavedModel(dir)
	if err != nil {
		return err
	}
	m, err := runner.Load(dir, tags...)
	if err != nil {
		return err
	}
	defer m.Close()
	sig, ok := m.Signature(f.signature)
	if !ok {
		var names []string
		for _, s := range m.Signatures() {
			names = append(names, s.Name)
		}
		return fmt.Errorf("%s has no signature %s; it has %s", dir, excerpt.Quote(f.signature), strings.Join(names, ", "))
	}
	feeds := map[string]any{}
	defer func() {
		for _, t := range feeds {
			t.(*tfgo.Tensor).Close()
		}
	}()
	for key, a := range inputs {
		ti, ok := sig.Inputs[key]
		if !ok {
			return usagef("signature %s has no input %s; its inputs are %s", f.signature, excerpt.Quote(key), strings.Join(sig.InputNames(), ", "))
		}
		t, err := a.tensor(ti.DType)
		if err != nil {
			return fmt.Errorf("input %s: %w", key, err)
		}
		feeds[key] = t
	}
	outs, err := m.Run(context.Background(), f.signature, feeds)
	if err != nil {
		return err
	}
	defer func() {
		for _, t := range outs {
			t.Close()
		}
	}()
	if f.outdir != "" {
		if err := os.MkdirAll(f.outdir, 0o755); err != nil {
			return err
		}
	}
	for _, key := range sortedKeys(outs) {
		t := outs[key]
		a, err := fromTensor(t)
		if err != nil {
			return fmt.Errorf("output %s: %w", key, err)
		}
		fmt.Fprintf(w, "Result for output key %s:\n%s\n", key, formatArray(a))
		if f.outdir == "" {
			continue
		}
		path := filepath.Join(f.outdir, key+".npy")
		if err := writeOutput(path, t, f.overwrite); err != nil {
			return err
		}
		fmt.Fprintf(w, "Output %s is saved to %s\n", key, path)
	}
	return nil
}

// detectSavedModel checks that dir is a SavedModel before the runtime
// loads it.
func detectSavedModel(dir string) (string, string, error) {
	format, target, err := detect(dir)
	if err != nil {
		return "", "", err
	}
	if format != fmtSavedModel {
		return "", "", fmt.Errorf("%s: not a SavedModel directory (it looks like a %s); gotf run runs SavedModels", dir, format)
	}
	return format, target, nil
}

func writeOutput(path string, t *tfgo.Tensor, overwrite bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flags |= os.O_EXCL
	}
	file, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("output file %s already exists: add --overwrite to replace it", path)
	}
	if err != nil {
		return err
	}
	if err := writeNPY(file, t); err != nil {
		file.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return file.Close()
}

// formatArray prints values nested as numpy prints arrays, with Go's
// shortest round-trip formatting of each number (numpy rounds to 8
// digits; the .npy files are exact either way).
func formatArray(a *array) string {
	var b strings.Builder
	n := a.len()
	elem := func(k int) string {
		switch a.kind {
		case kindInt:
			return fmt.Sprint(a.i[k])
		case kindFloat:
			if a.f32 {
				return pyFloat32(float32(a.f[k]))
			}
			return pyFloat(a.f[k])
		case kindBool:
			if a.b[k] {
				return "True"
			}
			return "False"
		}
		return "b" + pyQuote(string(a.s[k]))
	}
	if len(a.shape) == 0 {
		if n == 1 {
			return elem(0)
		}
		return "[]"
	}
	k := 0
	var rec func(d int)
	rec = func(d int) {
		b.WriteByte('[')
		for i := int64(0); i < a.shape[d]; i++ {
			if i > 0 {
				if d == len(a.shape)-1 {
					b.WriteByte(' ')
				} else {
					b.WriteString("\n" + strings.Repeat(" ", d+1))
				}
			}
			if d == len(a.shape)-1 {
				if k < n {
					b.WriteString(elem(k))
				}
				k++
			} else {
				rec(d + 1)
			}
		}
		b.WriteByte(']')
	}
	rec(0)
	return b.String()
}
