// Package pytext writes what Python's protobuf text_format writes, where
// files must be byte for byte Python's (a checkpoint state file, a
// timeline's proto text).
package pytext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// CEscape escapes s for a text-format string as Python's text_format does
// for a string field: \n \r \t \" \' \\ by name, other control bytes and
// bytes that are not valid UTF-8 in octal, valid UTF-8 as is.
func CEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c >= 0x80 {
				if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || n > 1 {
					b.WriteString(s[i : i+n])
					i += n - 1
					continue
				}
			}
			if c < 0x20 || c >= 0x7f {
				fmt.Fprintf(&b, `\%03o`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}
