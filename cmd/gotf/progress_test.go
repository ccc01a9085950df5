package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The bar is drawn on a terminal (a character device) only; its steps
// fill it.
func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	newProgress(&b, "gotf x", 2).step("reading")
	assert.Empty(t, b.String(), "no bar for a pipe or a file")
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer devnull.Close()
	assert.NotNil(t, newProgress(devnull, "gotf x", 2).w, "a character device is a terminal's kind of file")

	p := &progress{w: &b, name: "gotf x", n: 2, start: time.Now()}
	p.step("reading %s", "a.keras")
	p.step("writing %s", "b.h5")
	p.done()
	lines := strings.Split(b.String(), "\r\033[K")
	require.Len(t, lines, 4, "%q", b.String())
	assert.Contains(t, lines[1], "gotf x [>                   ] 1/2 reading a.keras")
	assert.Contains(t, lines[2], "gotf x [==========>         ] 2/2 writing b.h5")
	assert.Empty(t, lines[3])
}
