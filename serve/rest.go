package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/gotf/gotf/savedmodel/runner"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/encoding/protojson"
)

// The paths TF Serving's REST API answers (http_rest_api_util.cc), matched
// whole and case-insensitively as RE2::FullMatch does there.
var (
	predictPath = regexp.MustCompile(`^(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)$`)
	statusPath  = regexp.MustCompile(`^(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?$`)
)

// DefaultSignature is the signature a request without signature_name runs.
const DefaultSignature = "serving_default"

// ServeHTTP answers TF Serving's REST API under /v1/. Every error is
// {"error": "<message>"} with the HTTP status TF Serving gives its code.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.serveHealth(w, r) {
		return
	}
	if s.serveMetrics(w, r) {
		return
	}
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(strings.ToLower(path), "/v1/") {
		writeError(w, statusf(NotFound, "Not found: %s %s", r.Method, path))
		return
	}
	r, observed := s.observeREST(r, path)
	out, err := s.handle(r, path)
	observed(err)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, out)
}

func writeError(w http.ResponseWriter, err error) {
	st := statusOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpCode(st.Code))
	io.WriteString(w, `{ "error": `+quoteJSON(st.Message)+` }`+"\n")
}

// parseSpec reads the model, version and label of a path's groups.
func parseSpec(name, ver, label string) (spec, error) {
	sp := spec{}
	var err error
	if sp.model, err = url.PathUnescape(name); err != nil {
		return sp, statusf(InvalidArgument, "Failed to decode model name:%s", name)
	}
	if ver != "" {
		n, err := strconv.ParseInt(ver, 10, 64)
		if err != nil {
			return sp, statusf(InvalidArgument, "Failed to convert version: %s to numeric.", ver)
		}
		sp.version = &n
	}
	if label != "" {
		if sp.label, err = url.PathUnescape(label); err != nil {
			return sp, statusf(InvalidArgument, "Failed to decode model version label:%s", label)
		}
	}
	return sp, nil
}

func (s *Server) handle(r *http.Request, path string) (string, error) {
	malformed := statusf(InvalidArgument, "Malformed request: %s %s", r.Method, path)
	switch r.Method {
	case http.MethodPost:
		m := predictPath.FindStringSubmatch(path)
		if m == nil {
			return "", malformed
		}
		sp, err := parseSpec(m[1], m[2], m[3])
		if err != nil {
			return "", err
		}
		body, err := s.readBody(r)
		if err != nil {
			return "", err
		}
		doc, err := s.parseRequest(body)
		if err != nil {
			return "", err
		}
		ctx := r.Context()
		if s.cfg.RequestTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
			defer cancel()
		}
		switch strings.ToLower(m[4]) {
		case "predict":
			return s.predict(ctx, sp, doc)
		case "classify":
			return s.classifyOrRegress(ctx, sp, doc, true)
		default:
			return s.classifyOrRegress(ctx, sp, doc, false)
		}
	case http.MethodGet:
		m := statusPath.FindStringSubmatch(path)
		if m == nil {
			return "", malformed
		}
		if m[1] == "" {
			return "", statusf(InvalidArgument, "Missing model name in request.")
		}
		sp, err := parseSpec(m[1], m[2], m[3])
		if err != nil {
			return "", err
		}
		if strings.EqualFold(m[4], "metadata") {
			return s.metadata(sp)
		}
		return s.modelStatus(sp)
	}
	return "", malformed
}

// readBody reads a request body up to the configured bound, refusing a
// larger one before reading it all.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxRequestBytes
	if r.ContentLength > limit {
		return nil, statusf(ResourceExhausted, "Request body of %d bytes is over the server's limit of %d bytes", r.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, statusf(InvalidArgument, "Reading the request body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, statusf(ResourceExhausted, "Request body is over the server's limit of %d bytes", limit)
	}
	return body, nil
}

// parseRequest parses a request body, which must be a JSON object.
func (s *Server) parseRequest(body []byte) (*jvalue, error) {
	doc, err := parseJSON(body, jsonLimits{maxDepth: s.cfg.MaxJSONDepth, maxValues: s.cfg.MaxJSONValues})
	if err != nil {
		return nil, err
	}
	if doc.kind != jObject {
		return nil, statusf(InvalidArgument, "JSON Value: %s Is not object", doc.debugString())
	}
	return doc, nil
}

// signatureName is the request's signature_name, or "" for the default.
func signatureName(doc *jvalue) (string, error) {
	v := doc.member("signature_name")
	if v == nil {
		return "", nil
	}
	if v.kind != jString {
		return "", statusf(InvalidArgument, "JSON Value: %s not formatted correctly. 'signature_name' key must be a string value.", doc.debugString())
	}
	return v.s, nil
}

// acquireFor reads a request's signature_name ("" when absent) and
// holds the version it asks for; the caller releases it.
func (s *Server) acquireFor(sp spec, doc *jvalue) (*handle, string, error) {
	sigName, err := signatureName(doc)
	if err != nil {
		return nil, "", err
	}
	h, err := s.models.acquire(sp)
	if err != nil {
		return nil, "", err
	}
	return h, sigName, nil
}

func (s *Server) predict(ctx context.Context, sp spec, doc *jvalue) (string, error) {
	h, sigName, err := s.acquireFor(sp, doc)
	if err != nil {
		return "", err
	}
	defer h.release()
	name, sig, err := predictSignature(h, sigName)
	if err != nil {
		return "", err
	}
	instances, inputs := doc.member("instances"), doc.member("inputs")
	var tensors requestTensors
	row := false
	switch {
	case instances != nil && inputs != nil:
		return "", statusf(InvalidArgument, "JSON Value: %s Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ", doc.debugString())
	case instances != nil:
		if instances.kind != jArray {
			return "", statusf(InvalidArgument, "JSON Value: %s Expecting 'instances' to be an list/array", doc.debugString())
		}
		if len(instances.arr) == 0 {
			return "", statusf(InvalidArgument, "JSON Value: %s No values in 'instances' array", doc.debugString())
		}
		row = true
		tensors, err = rows(instances, sig.Inputs)
	case inputs != nil:
		tensors, err = columnar(inputs, sig.Inputs)
	default:
		return "", statusf(InvalidArgument, "Missing 'inputs' or 'instances' key")
	}
	if err != nil {
		return "", err
	}
	defer tensors.Close()
	outs, err := s.runSignature(ctx, h, name, sig, tensors, nil)
	if err != nil {
		return "", err
	}
	defer closeAll(outs)
	return predictResponse(outs, row)
}

// predictSignature finds a predict request's signature ("" is the
// default), which must have inputs.
func predictSignature(h *handle, sigName string) (string, runner.SignatureInfo, error) {
	name := sigName
	if name == "" {
		name = DefaultSignature
	}
	sig, ok := h.model.Signature(name)
	if !ok {
		return "", sig, statusf(InvalidArgument, "Serving signature name: %q not found in signature def", name)
	}
	if len(sig.Inputs) == 0 {
		if sigName == "" {
			sigName = "DEFAULT"
		}
		return "", sig, statusf(InvalidArgument, "Failed to get input map for signature: %s", sigName)
	}
	return name, sig, nil
}

// runError keeps a run's error as the client should see it: the runtime's
// own status, or runner's check of the inputs.
func runError(err error) error {
	st := statusOf(err)
	if st.Code == Unknown && !errors.As(err, new(*Status)) {
		return &Status{Code: Internal, Message: err.Error()}
	}
	return st
}

func closeAll[M ~map[string]T, T interface{ Close() error }](m M) {
	for _, t := range m {
		t.Close()
	}
}

// modelStatus is GetModelStatus as JSON (the proto's json_names are its
// field names).
func (s *Server) modelStatus(sp spec) (string, error) {
	vs, err := s.models.status(sp)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("{\n \"model_version_status\": [")
	for i, v := range vs {
		if i > 0 {
			b.WriteString(",")
		}
		code, msg := OK, ""
		if v.Err != nil {
			code, msg = v.Err.Code, v.Err.Message
		}
		fmt.Fprintf(&b, "\n  {\n   \"version\": \"%d\",\n   \"state\": \"%s\",\n   \"status\": {\n    \"error_code\": \"%s\",\n    \"error_message\": %s\n   }\n  }",
			v.Version, v.State, codeName(code), quoteJSON(msg))
	}
	b.WriteString("\n ]\n}\n")
	return b.String(), nil
}

// metadata is GetModelMetadata with the signature_def field, printed as
// TF Serving prints it: the model spec, then the SignatureDefMap with
// proto field names and default values (always_print_primitive_fields).
func (s *Server) metadata(sp spec) (string, error) {
	name, version, defs, err := s.signatureDefs(sp)
	if err != nil {
		return "", err
	}
	opts := protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\"model_spec\":{\n \"name\": %s,\n \"signature_name\": \"\",\n \"version\": \"%d\"\n}\n,\n\"metadata\": {\"signature_def\": {\n \"signature_def\": {", quoteJSON(name), version)
	for i, name := range sortedNames(defs) {
		js, err := opts.Marshal(defs[name])
		if err != nil {
			return "", statusf(Internal, "Failed to convert signature def proto to json. Error: %v", err)
		}
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n  %s: %s", quoteJSON(name), js)
	}
	b.WriteString("\n }\n}\n}\n}\n")
	return b.String(), nil
}

// signatureDefs are the SignatureDefs of the version a GetModelMetadata
// request asks for, with its model name and version.
func (s *Server) signatureDefs(sp spec) (string, int64, map[string]*cpb.SignatureDef, error) {
	h, err := s.models.acquire(sp)
	if err != nil {
		return "", 0, nil, err
	}
	defer h.release()
	return h.name, h.version, h.model.MetaGraph().GetSignatureDef(), nil
}
