// Package excerpt shortens what came from a file, a request or the
// environment before an error message quotes it: an error names the value
// without repeating all of it (a constant of megabytes, a hostile key).
package excerpt

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Max is how many bytes of a value an error quotes.
const Max = 200

// Of formats v for an error message: at most Max bytes of it, cut at a
// rune boundary and marked with "...". Maps and slices are shown as JSON.
func Of(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	case json.RawMessage:
		s = string(x)
	case map[string]any, []any:
		// Sprint of a large tree would cost what quoting it tries to avoid.
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprint(x)
		} else {
			s = string(b)
		}
	default:
		s = fmt.Sprint(v)
	}
	if len(s) <= Max {
		return s
	}
	cut := Max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Quote is s in Go quotes, for names and keys: at most Max bytes of the
// quoted form (escapes such as \x00 make it up to four times longer than
// s), cut at a rune boundary, with the full length when it was cut.
func Quote(s string) string {
	if q := strconv.Quote(s); len(q) <= Max+2 {
		return q
	}
	cut := min(len(s), Max)
	for cut > 0 && (!utf8.RuneStart(s[cut]) || len(strconv.Quote(s[:cut])) > Max+2) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:cut]), len(s))
}
