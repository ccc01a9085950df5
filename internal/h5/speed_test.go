package h5

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type countingReader struct {
	f           *os.File
	calls, big  atomic.Int64
	bigLimitLen int
}

func (c *countingReader) ReadAt(b []byte, off int64) (int, error) {
	c.calls.Add(1)
	if len(b) >= c.bigLimitLen {
		c.big.Add(1)
	}
	return c.f.ReadAt(b, off)
}

// Reading a 100 MB contiguous float32 dataset is one large ReadAt into
// the result; GOTF_H5_SPEED=1 also times it against h5py.
func TestReadSpeed(t *testing.T) {
	if os.Getenv("GOTF_H5_SPEED") == "" {
		testutil.Skip(t, "set GOTF_H5_SPEED=1 to time a 100 MB read against h5py")
	}
	path := filepath.Join(t.TempDir(), "big.h5")
	out := interop.Python(t, `
import h5py, time
p = inputs["path"].item().decode()
with h5py.File(p, "w") as f:
    f["x"] = np.random.default_rng(0).standard_normal(25 << 20, dtype=np.float32)
best = 1e9
for _ in range(3):
    with h5py.File(p, "r") as f:
        t0 = time.perf_counter()
        v = f["x"][()]
        best = min(best, time.perf_counter() - t0)
outputs["seconds"] = np.float64(best)
outputs["sum"] = np.float64(v.astype(np.float64).sum())
`, pathTensor(t, path))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, _ := f.Stat()
	cr := &countingReader{f: f, bigLimitLen: 1 << 20}
	file, err := openReader(path, cr, st.Size())
	require.NoError(t, err)
	best := time.Hour
	for i := 0; i < 3; i++ {
		cr.big.Store(0)
		t0 := time.Now()
		a, err := file.Root().Read("x", nil, 0)
		require.NoError(t, err)
		best = min(best, time.Since(t0))
		assert.Equal(t, 100<<20, len(a.Data))
		assert.Equal(t, int64(1), cr.big.Load(), "large ReadAt calls for one read")
	}
	py := math.Float64frombits(binary.LittleEndian.Uint64(out["seconds"].Data()))
	t.Logf("100 MB float32 dataset: Go %v (best of 3, %d ReadAt calls in all, one of 100 MB per read), h5py %.1f ms",
		best.Round(time.Millisecond/10), cr.calls.Load(), py*1000)
}
