package savedmodel

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gotf/gotf/internal/pytext"
)

// CheckpointStateFilename is the name of the text file, in a checkpoint
// directory, that names the latest checkpoint.
const CheckpointStateFilename = "checkpoint"

// CheckpointState is the content of a directory's "checkpoint" file
// (tensorflow.CheckpointState, stored in protobuf text format), which
// tf.train.Saver, tf.train.CheckpointManager and tf.train.latest_checkpoint
// use to find checkpoints.
type CheckpointState struct {
	// ModelCheckpointPath is the prefix of the latest checkpoint, relative
	// to the directory or absolute.
	ModelCheckpointPath string
	// AllModelCheckpointPaths lists the prefixes of the checkpoints still
	// kept, oldest first; TensorFlow keeps the latest one last.
	AllModelCheckpointPaths []string
	// AllModelCheckpointTimestamps holds the save time of each checkpoint
	// of AllModelCheckpointPaths, in seconds since the Unix epoch.
	AllModelCheckpointTimestamps []float64
	// LastPreservedTimestamp is the time of the last checkpoint kept
	// permanently (keep_checkpoint_every_n_hours), in seconds since the
	// Unix epoch.
	LastPreservedTimestamp float64
}

// ParseCheckpointState parses a checkpoint state in protobuf text format.
// Paths are returned as stored. Unknown scalar fields are skipped.
func ParseCheckpointState(text []byte) (*CheckpointState, error) {
	p := &textParser{src: string(text)}
	st := &CheckpointState{}
	for {
		p.skipSpace()
		if p.eof() {
			return st, nil
		}
		field, err := p.ident()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if !p.consume(':') {
			return nil, p.errorf("expected ':' after %s", field)
		}
		p.skipSpace()
		switch field {
		case "model_checkpoint_path", "all_model_checkpoint_paths":
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			if field == "model_checkpoint_path" {
				st.ModelCheckpointPath = s
			} else {
				st.AllModelCheckpointPaths = append(st.AllModelCheckpointPaths, s)
			}
		case "all_model_checkpoint_timestamps", "last_preserved_timestamp":
			f, err := p.float()
			if err != nil {
				return nil, err
			}
			if field == "last_preserved_timestamp" {
				st.LastPreservedTimestamp = f
			} else {
				st.AllModelCheckpointTimestamps = append(st.AllModelCheckpointTimestamps, f)
			}
		default:
			if err := p.skipScalar(); err != nil {
				return nil, err
			}
		}
		p.skipSpace()
		if !p.consume(';') {
			p.consume(',')
		}
	}
}

// MarshalText returns st in protobuf text format, as Python's
// text_format.MessageToString writes it (control bytes escaped, UTF-8 as
// is, floats as Python's repr).
func (st *CheckpointState) MarshalText() ([]byte, error) {
	if st == nil {
		return nil, errors.New("savedmodel: nil CheckpointState")
	}
	var b strings.Builder
	if st.ModelCheckpointPath != "" {
		fmt.Fprintf(&b, "model_checkpoint_path: \"%s\"\n", pytext.CEscape(st.ModelCheckpointPath))
	}
	for _, p := range st.AllModelCheckpointPaths {
		fmt.Fprintf(&b, "all_model_checkpoint_paths: \"%s\"\n", pytext.CEscape(p))
	}
	for _, t := range st.AllModelCheckpointTimestamps {
		fmt.Fprintf(&b, "all_model_checkpoint_timestamps: %s\n", formatFloat(t))
	}
	if st.LastPreservedTimestamp != 0 {
		fmt.Fprintf(&b, "last_preserved_timestamp: %s\n", formatFloat(st.LastPreservedTimestamp))
	}
	return []byte(b.String()), nil
}

// ReadCheckpointState reads dir's "checkpoint" file. Relative paths are
// joined to dir, as tf.train.get_checkpoint_state does. A file over
// MaxCheckpointStateBytes is refused (ErrTooLarge) without being read.
func ReadCheckpointState(dir string) (*CheckpointState, error) {
	path := filepath.Join(dir, CheckpointStateFilename)
	data, err := readFileLimited(path, MaxCheckpointStateBytes)
	if err != nil {
		return nil, &Error{Op: "read", File: path, Err: err}
	}
	st, err := ParseCheckpointState(data)
	if err != nil {
		return nil, &Error{Op: "read", File: path, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	st.ModelCheckpointPath = abs(st.ModelCheckpointPath)
	for i, p := range st.AllModelCheckpointPaths {
		st.AllModelCheckpointPaths[i] = abs(p)
	}
	return st, nil
}

// WriteCheckpointState writes st as dir's "checkpoint" file, atomically
// (a temporary file renamed into place). Paths are written as given:
// TensorFlow writes them relative to dir.
func WriteCheckpointState(dir string, st *CheckpointState) error {
	path := filepath.Join(dir, CheckpointStateFilename)
	text, err := st.MarshalText()
	if err != nil {
		return &Error{Op: "write", File: path, Err: err}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &Error{Op: "write", File: dir, Err: err}
	}
	removeStale(dir, stateTempRE.MatchString)
	f, err := os.CreateTemp(dir, CheckpointStateFilename+".tmp*")
	if err != nil {
		return &Error{Op: "write", File: path, Err: err}
	}
	defer unlockTemp(lockTemp(f.Name()))
	f.Chmod(0o644)
	_, err = f.Write(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return &Error{Op: "write", File: path, Err: err}
	}
	syncDir(dir)
	return nil
}

// LatestCheckpoint returns the prefix of the latest checkpoint named by
// dir's "checkpoint" file, joined to dir if relative, provided its .index
// file exists (as tf.train.latest_checkpoint checks). Otherwise it returns
// an error wrapping ErrNotFound (or the error reading the state file).
func LatestCheckpoint(dir string) (string, error) {
	st, err := ReadCheckpointState(dir)
	if err != nil {
		return "", err
	}
	if st.ModelCheckpointPath == "" {
		return "", &Error{Op: "read", File: filepath.Join(dir, CheckpointStateFilename), Err: fmt.Errorf("%w: no model_checkpoint_path", ErrNotFound)}
	}
	idx := IndexFilename(st.ModelCheckpointPath)
	if _, err := os.Stat(idx); err != nil {
		return "", &Error{Op: "read", File: idx, Err: fmt.Errorf("%w: latest checkpoint: %v", ErrNotFound, err)}
	}
	return st.ModelCheckpointPath, nil
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "inf"
	}
	if math.IsInf(f, -1) {
		return "-inf"
	}
	if math.IsNaN(f) {
		return "nan"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// textParser is a minimal protobuf text-format scanner for flat messages.
type textParser struct {
	src  string
	pos  int
	line int
}

func (p *textParser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", p.line+1, fmt.Sprintf(format, args...))
}

func (p *textParser) eof() bool { return p.pos >= len(p.src) }

func (p *textParser) skipSpace() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *textParser) consume(c byte) bool {
	if p.pos < len(p.src) && p.src[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func isIdent(c byte, first bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

func (p *textParser) ident() (string, error) {
	start := p.pos
	for p.pos < len(p.src) && isIdent(p.src[p.pos], p.pos == start) {
		p.pos++
	}
	if p.pos == start {
		return "", p.errorf("expected a field name")
	}
	return p.src[start:p.pos], nil
}

// str parses one or more adjacent quoted strings.
func (p *textParser) str() (string, error) {
	var out []byte
	n := 0
	for {
		if p.pos >= len(p.src) || (p.src[p.pos] != '"' && p.src[p.pos] != '\'') {
			if n == 0 {
				return "", p.errorf("expected a quoted string")
			}
			return string(out), nil
		}
		q := p.src[p.pos]
		p.pos++
		for {
			if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
				return "", p.errorf("unterminated string")
			}
			c := p.src[p.pos]
			p.pos++
			if c == q {
				break
			}
			if c != '\\' {
				out = append(out, c)
				continue
			}
			if p.pos >= len(p.src) {
				return "", p.errorf("unterminated string")
			}
			c = p.src[p.pos]
			p.pos++
			switch c {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'a':
				out = append(out, '\a')
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'v':
				out = append(out, '\v')
			case '\\', '\'', '"', '?':
				out = append(out, c)
			case '0', '1', '2', '3', '4', '5', '6', '7':
				v := int(c - '0')
				for k := 0; k < 2 && p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '7'; k++ {
					v = v*8 + int(p.src[p.pos]-'0')
					p.pos++
				}
				if v > 0xff {
					return "", p.errorf("octal escape out of range")
				}
				out = append(out, byte(v))
			case 'x', 'X':
				v, k := 0, 0
				for ; k < 2 && p.pos < len(p.src) && isHex(p.src[p.pos]); k++ {
					v = v*16 + hexVal(p.src[p.pos])
					p.pos++
				}
				if k == 0 {
					return "", p.errorf("bad \\x escape")
				}
				out = append(out, byte(v))
			case 'u', 'U':
				digits := 4
				if c == 'U' {
					digits = 8
				}
				if p.pos+digits > len(p.src) {
					return "", p.errorf("bad \\%c escape", c)
				}
				v, err := strconv.ParseUint(p.src[p.pos:p.pos+digits], 16, 32)
				if err != nil || v > utf8.MaxRune {
					return "", p.errorf("bad \\%c escape", c)
				}
				p.pos += digits
				out = utf8.AppendRune(out, rune(v))
			default:
				return "", p.errorf("unknown escape \\%c", c)
			}
		}
		n++
		p.skipSpace()
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}

// float parses a number (including inf, -inf, nan and a trailing f).
func (p *textParser) float() (float64, error) {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '+' {
			p.pos++
			continue
		}
		break
	}
	tok := strings.ToLower(p.src[start:p.pos])
	switch tok {
	case "inf", "infinity", "+inf":
		return math.Inf(1), nil
	case "-inf", "-infinity":
		return math.Inf(-1), nil
	case "nan", "-nan":
		return math.NaN(), nil
	}
	if tok == "" {
		return 0, p.errorf("expected a number")
	}
	if strings.HasSuffix(tok, "f") && !strings.HasPrefix(tok, "0x") {
		tok = tok[:len(tok)-1]
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		return 0, p.errorf("bad number %q", p.src[start:p.pos])
	}
	return f, nil
}

// skipScalar skips the value of an unknown scalar field.
func (p *textParser) skipScalar() error {
	if p.pos < len(p.src) && (p.src[p.pos] == '"' || p.src[p.pos] == '\'') {
		_, err := p.str()
		return err
	}
	start := p.pos
	for p.pos < len(p.src) && !strings.ContainsRune(" \t\r\n;,#", rune(p.src[p.pos])) {
		p.pos++
	}
	if p.pos == start {
		return p.errorf("expected a value")
	}
	return nil
}
