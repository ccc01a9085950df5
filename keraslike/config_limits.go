package keraslike

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	ex "github.com/gotf/gotf/internal/excerpt"
)

// Limits on what a model config (config.json, a legacy .h5's model_config)
// may declare. A file is untrusted input: every size it states is checked
// before it is used, so that reading a config takes memory and time in
// proportion to these limits, never to a number the file chose. Real Keras
// configs are far inside them. (maxConfigBytes, in kerasfile_zip.go,
// bounds the JSON itself.) (a 100-block GPT's config.json is about
// 200 KB, with names under 100 bytes).
const (
	// maxConfigValues bounds the JSON values (objects, arrays, strings,
	// numbers, literals, keys) of a config: the decoded tree costs about
	// 100 bytes a value, so at most ~200 MB.
	maxConfigValues = 1 << 21
	// maxConfigDepth bounds the nesting of a config's JSON. Keras' own
	// configs nest about 12 deep (model, layer list, entry, inbound node,
	// argument, tensor, history).
	maxConfigDepth = 64
	// maxConfigString bounds any string of a config, keys included (a
	// Lambda's serialized code is the longest Keras writes, a few KB).
	maxConfigString = 64 << 10
	// maxNameBytes bounds the names a config gives layers and models and
	// the class, module and registered names it gives layers: a layer's
	// name prefixes every operation and weight it makes, so a long name is
	// paid for many times over (a 5 MB name cost gigabytes).
	maxNameBytes = 1 << 10
	// maxLayers bounds the layers of a model and maxCalls the calls of
	// layers in a functional model (inbound nodes, all layers together):
	// each call adds its operations to the graph.
	maxLayers = 1 << 13
	maxCalls  = 1 << 15
	// maxDim bounds one dimension, unit count or head size read from a
	// config (and an Embedding's vocabulary up to maxWeightElements).
	maxDim = 1 << 24
	// maxWeightElements bounds the elements of one weight whose shape a
	// config fixes alone (an Embedding's [input_dim, output_dim], a
	// PositionalEmbedding's table), and the elements of one example of a
	// model's input: 8 GiB of float32. LoadOptions.MaxParams bounds the
	// whole model, once the graph knows every weight's shape.
	maxWeightElements = 1 << 31
)

// excerpt and quoted shorten a value from a file for an error message
// (internal/excerpt).
func excerpt(v any) string { return ex.Of(v) }

func quoted(s string) string { return ex.Quote(s) }

// checkConfigJSON scans a config's JSON token by token, without building
// it, and refuses it when it is larger, deeper, or has more or longer
// values than the limits above; only then is it decoded.
func checkConfigJSON(raw []byte) error {
	if len(raw) > maxConfigBytes {
		return fmt.Errorf("the config is %d bytes, more than the limit of %d", len(raw), maxConfigBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // a number is only scanned here, not converted
	depth, values := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("model config: %w", err)
		}
		if values++; values > maxConfigValues {
			return fmt.Errorf("model config: more than %d JSON values", maxConfigValues)
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				if depth++; depth > maxConfigDepth {
					return fmt.Errorf("model config: nested more than %d deep", maxConfigDepth)
				}
			} else {
				depth--
			}
		case string:
			if len(t) > maxConfigString {
				return fmt.Errorf("model config: a string of %d bytes (%s), more than the limit of %d", len(t), quoted(t), maxConfigString)
			}
		}
	}
	return nil
}

// checkName refuses a name from a config that is longer than
// maxNameBytes or not valid UTF-8. An empty name passes (a missing module
// or registered name is empty; callers that need a name check for it).
func checkName(what, name string) error {
	switch {
	case len(name) > maxNameBytes:
		return fmt.Errorf("%s %s is longer than the limit of %d bytes", what, quoted(name), maxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s %s is not valid UTF-8", what, quoted(name))
	}
	return nil
}
