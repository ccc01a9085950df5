package keraslike

import (
	"fmt"
	"math/rand"
)

// ArrayDataset batches in-memory examples (the Go counterpart of fit(x, y,
// batch_size, shuffle)): X and Y hold one example each, of equal length;
// each batch is a slice of examples, i.e. a tensor with a batch dimension.
type ArrayDataset[X, Y any] struct {
	X         []X
	Y         []Y
	BatchSize int
	// Shuffle reorders the examples every epoch, reproducibly from Seed.
	Shuffle bool
	Seed    int64
	// DropRemainder drops a last, smaller batch.
	DropRemainder bool
}

// Len is the number of batches per epoch.
func (d *ArrayDataset[X, Y]) Len() int {
	if d.BatchSize <= 0 {
		return 0
	}
	if d.DropRemainder {
		return len(d.X) / d.BatchSize
	}
	return (len(d.X) + d.BatchSize - 1) / d.BatchSize
}

// Batches yields the epoch's batches.
func (d *ArrayDataset[X, Y]) Batches(epoch int, fn func(Batch) bool) error {
	return d.BatchesFrom(epoch, 0, fn)
}

// SkippingDataset is a Dataset that can start an epoch at a later batch
// without producing the ones before it: a resumed Fit (see Resumer) uses it
// to skip the batches a backup already covers. Fit skips the batches of
// any other Dataset by taking and dropping them.
type SkippingDataset interface {
	Dataset
	// BatchesFrom is Batches from the batch numbered first (from 0); the
	// batches are those Batches yields for the epoch, the same every time.
	BatchesFrom(epoch, first int, fn func(Batch) bool) error
}

// BatchesFrom yields the epoch's batches from the batch numbered first:
// the epoch's order depends only on Seed and epoch, so a resumed run sees
// exactly the batches the interrupted one had left.
func (d *ArrayDataset[X, Y]) BatchesFrom(epoch, first int, fn func(Batch) bool) error {
	if first < 0 {
		return fmt.Errorf("dataset: first batch must not be negative, got %d", first)
	}
	if len(d.X) != len(d.Y) {
		return fmt.Errorf("dataset has %d inputs but %d targets", len(d.X), len(d.Y))
	}
	if d.BatchSize <= 0 {
		return fmt.Errorf("dataset batch size must be positive, got %d", d.BatchSize)
	}
	order := make([]int, len(d.X))
	for i := range order {
		order[i] = i
	}
	if d.Shuffle {
		r := rand.New(rand.NewSource(d.Seed + int64(epoch)*7919))
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	// Capped so that a huge first cannot overflow the product.
	for start := min(first, len(order)/d.BatchSize+1) * d.BatchSize; start < len(order); start += d.BatchSize {
		end := min(start+d.BatchSize, len(order))
		if d.DropRemainder && end-start < d.BatchSize {
			break
		}
		xs, ys := make([]X, 0, end-start), make([]Y, 0, end-start)
		for _, i := range order[start:end] {
			xs, ys = append(xs, d.X[i]), append(ys, d.Y[i])
		}
		if !fn(Batch{X: xs, Y: ys}) {
			return nil
		}
	}
	return nil
}

// ByteTokenizer maps text to byte ids (a vocabulary of 256) and back.
type ByteTokenizer struct{}

// VocabSize is 256.
func (ByteTokenizer) VocabSize() int { return 256 }

// Encode returns the bytes of text as ids.
func (ByteTokenizer) Encode(text []byte) []int32 {
	ids := make([]int32, len(text))
	for i, b := range text {
		ids[i] = int32(b)
	}
	return ids
}

// Decode returns the text of ids.
func (ByteTokenizer) Decode(ids []int32) string {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return string(b)
}

// NextTokenDataset cuts a token stream into windows of SeqLen+1 tokens for
// language modelling: x is a window's first SeqLen tokens, y the next
// token at each position. Windows do not overlap; their order is shuffled
// per epoch from Seed; a last partial batch is dropped.
func NextTokenDataset(tokens []int32, seqLen, batchSize int, seed int64) (*ArrayDataset[[]int32, []int32], error) {
	if seqLen <= 0 || batchSize <= 0 {
		return nil, fmt.Errorf("sequence length and batch size must be positive, got %d and %d", seqLen, batchSize)
	}
	n := (len(tokens) - 1) / seqLen
	if n < batchSize {
		return nil, fmt.Errorf("%d tokens make %d windows of %d, fewer than one batch of %d", len(tokens), n, seqLen+1, batchSize)
	}
	d := &ArrayDataset[[]int32, []int32]{BatchSize: batchSize, Shuffle: true, Seed: seed, DropRemainder: true}
	for i := 0; i < n; i++ {
		w := tokens[i*seqLen : i*seqLen+seqLen+1]
		d.X = append(d.X, w[:seqLen])
		d.Y = append(d.Y, w[1:])
	}
	return d, nil
}
