package serve

import (
	"fmt"
	"testing"
	"time"

	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
)

// FuzzDecodeRequest feeds arbitrary bodies through the decoding a predict
// or classify request goes through: a hostile body gets an error, never a
// panic, and no tensor larger than the body describes.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"instances": [[1, 2, 3]]}`,
		`{"inputs": {"x": [[NaN, -Infinity, 1e308]], "s": [{"b64": "AAE="}], "n": [-9223372036854775808]}}`,
		`{"instances": [{"x": [1, 2, 3], "s": "a", "n": 1}, {"x": [1, 2], "s": {"b64": "%%"}, "n": 2}]}`,
		`{"examples": [{"f": [1, 2.5]}, {"g": {"b64": "AA=="}, "h": true}], "context": {"c": "x"}}`,
		`[[[[[[[[[[`, `{"a": "\ud800"}`, `{"a": "\u00e9\n"}`, `-`, `{"x": 1e99999}`,
	} {
		f.Add([]byte(s))
	}
	multi := map[string]runner.TensorInfo{
		"x": {DType: tfgo.Float}, "s": {DType: tfgo.String}, "n": {DType: tfgo.Int64},
	}
	single := map[string]runner.TensorInfo{"x": {DType: tfgo.Float}}
	f.Fuzz(func(t *testing.T, body []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				panic(fmt.Sprintf("HANG on %q", body))
			}
		}()
		doc, err := parseJSON(body, jsonLimits{maxDepth: 16, maxValues: 1 << 12})
		if err != nil || doc.kind != jObject {
			return
		}
		for _, inputs := range []map[string]runner.TensorInfo{multi, single} {
			if v := doc.member("inputs"); v != nil {
				if ts, err := columnar(v, inputs); err == nil {
					ts.Close()
				}
			}
			if v := doc.member("instances"); v != nil && v.kind == jArray && len(v.arr) > 0 {
				if ts, err := rows(v, inputs); err == nil {
					ts.Close()
				}
			}
		}
		for _, classify := range []bool{true, false} {
			if tn, _, err := serializedExamples(doc, classify); err == nil {
				tn.Close()
			}
		}
	})
}
