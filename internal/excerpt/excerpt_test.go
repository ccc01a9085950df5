package excerpt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExcerpts(t *testing.T) {
	assert.Equal(t, `"dense"`, Quote("dense"))
	long := strings.Repeat("é", 300) // 600 bytes of 2-byte runes
	q := Quote(long)
	assert.Contains(t, q, "...")
	assert.Contains(t, q, "(600 bytes)")
	assert.Less(t, len(q), Max+40)
	nul := Quote(string(make([]byte, 4096))) // escapes quadruple the length
	assert.Less(t, len(nul), Max+40)
	assert.Contains(t, nul, "(4096 bytes)")
	o := Of(long)
	assert.LessOrEqual(t, len(o), Max+3)
	assert.True(t, strings.HasSuffix(o, "é..."), "cut at a rune boundary: %q", o)
	assert.Equal(t, `{"a":1}`, Of(map[string]any{"a": 1}))
	assert.Equal(t, "42", Of(42))
	assert.Equal(t, `[1,2]`, Of([]byte(`[1,2]`)))
}
