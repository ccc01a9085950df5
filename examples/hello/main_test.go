package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelloRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TensorFlow 2.21.", "device:CPU:0", "softmax(x·W + b)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
