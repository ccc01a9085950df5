package keraslike

import (
	"testing"

	"github.com/gotf/gotf/internal/interop"
)

func TestMain(m *testing.M) { interop.Main(m) }
