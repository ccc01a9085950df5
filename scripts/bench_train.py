"""Side-by-side train-step benchmark: Go (keraslike, one session run per
step) vs Keras 3 on the same TensorFlow runtime, machine and run.

For the two GPT configurations of the keraslike issue it times Keras
model.fit and a tf.function training loop (each without and with XLA), runs
cmd/benchtrain for Go (without and with XLA), measures TensorFlow's MatMul
GFLOP/s on this machine, and prints a table of ms/step, ratios and model
FLOP/s (6 x params x tokens / step time).

    make bench-train            # or: .venv/bin/python scripts/bench_train.py [--steps N]
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

CONFIGS = {
    "small": dict(seq=64, d=64, heads=2, layers=2, batch=16),
    "large": dict(seq=128, d=256, heads=4, layers=4, batch=32),
}


class PositionEmbedding(keras.layers.Layer):
    """Learned positions added to the token embeddings (keras_hub's PositionEmbedding)."""

    def __init__(self, seq, d, **kw):
        super().__init__(**kw)
        self.seq, self.d = seq, d

    def build(self, shape):
        self.embeddings = self.add_weight(shape=(self.seq, self.d), initializer="glorot_uniform", name="embeddings")

    def call(self, x):
        return x + self.embeddings[None, : tf.shape(x)[1]]


def gpt(c):
    """The same model as keraslike.NewGPT: post-LN blocks as in the seed."""
    ids = keras.Input((c["seq"],), dtype="int32")
    x = keras.layers.Embedding(256, c["d"])(ids)
    x = PositionEmbedding(c["seq"], c["d"])(x)
    for _ in range(c["layers"]):
        a = keras.layers.MultiHeadAttention(c["heads"], c["d"] // c["heads"])(x, x, use_causal_mask=True)
        x = keras.layers.LayerNormalization(epsilon=1e-6)(x + a)
        f = keras.layers.Dense(c["d"])(keras.layers.Dense(4 * c["d"], activation="gelu")(x))
        x = keras.layers.LayerNormalization(epsilon=1e-6)(x + f)
    return keras.Model(ids, keras.layers.Dense(256)(x))


def data(c, steps):
    r = np.random.default_rng(1)
    n = c["batch"] * steps
    return r.integers(0, 256, (n, c["seq"]), dtype=np.int32), r.integers(0, 256, (n, c["seq"]), dtype=np.int32)


def keras_fit(c, steps, warmup, jit):
    keras.backend.clear_session()
    m = gpt(c)
    m.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    x, y = data(c, max(steps, warmup))
    m.fit(x[: warmup * c["batch"]], y[: warmup * c["batch"]], batch_size=c["batch"], epochs=1, verbose=0)
    t = time.perf_counter()
    m.fit(x[: steps * c["batch"]], y[: steps * c["batch"]], batch_size=c["batch"], epochs=1, verbose=0)
    return (time.perf_counter() - t) * 1e3 / steps, m.count_params()


def tf_loop(c, steps, warmup, jit):
    keras.backend.clear_session()
    m = gpt(c)
    opt = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, m(x, training=True))
        grads = tape.gradient(loss, m.trainable_variables)
        opt.apply_gradients(zip(grads, m.trainable_variables))
        return loss

    x, y = data(c, max(steps, warmup))
    batches = [(tf.constant(x[i * c["batch"]:(i + 1) * c["batch"]]), tf.constant(y[i * c["batch"]:(i + 1) * c["batch"]]))
               for i in range(max(steps, warmup))]
    for i in range(warmup):
        step(*batches[i]).numpy()
    t = time.perf_counter()
    for i in range(steps):
        loss = step(*batches[i])
    loss.numpy()
    return (time.perf_counter() - t) * 1e3 / steps


def go(c_name, steps, warmup, xla, root, threads=0):
    cmd = ["go", "run", "./cmd/benchtrain", "-config", c_name, "-steps", str(steps), "-warmup", str(warmup),
           "-threads", str(threads)]
    if xla:
        cmd.append("-xla")
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ms_per_step"]


def matmul_gflops(n=2048, reps=10):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda: tf.matmul(a, b))
    mm().numpy()
    t = time.perf_counter()
    for _ in range(reps):
        r = mm()
    r.numpy()
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def measure(configs=("small", "large"), steps=30, warmup=5, root=None, log=None):
    """Every side of every configuration in this process and run: the MatMul
    ceiling (GFLOP/s) and per configuration a dict of ms/step (mean over the
    timed steps, as cmd/benchtrain reports), params and tokens per step.
    scripts/bench.py calls it for `make bench`."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # The ceiling is the best MatMul rate seen: on a shared machine one
    # measurement can catch a busy moment and make MFU exceed 100%.
    peak = matmul_gflops()
    rows = {}
    for name in configs:
        c = CONFIGS[name]
        if log:
            log(f"train step: {name} (Keras fit, tf.function, Go; each without and with XLA)")
        r = {}
        r["fit"], r["params"] = keras_fit(c, steps, warmup, False)
        r["fit_xla"], _ = keras_fit(c, steps, warmup, True)
        r["tf_function"] = tf_loop(c, steps, warmup, False)
        r["tf_function_xla"] = tf_loop(c, steps, warmup, True)
        r["go"] = go(name, steps, warmup, False, root)
        r["go_xla"] = go(name, steps, warmup, True, root)
        peak = max(peak, matmul_gflops())
        r["tokens"] = c["batch"] * c["seq"]
        best_go = min(r["go"], r["go_xla"])
        r["go_gflops"] = 6 * r["params"] * r["tokens"] / (best_go / 1e3) / 1e9
        rows[name] = r
    for r in rows.values():
        r["mfu"] = r["go_gflops"] / peak
    return peak, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--configs", default="small,large")
    args = ap.parse_args()
    peak, rows = measure(args.configs.split(","), args.steps, args.warmup)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; MatMul 2048^2 float32: {peak:.0f} GFLOP/s on this machine")
    print()
    print(f"{'config':8}{'params':>10}{'Go':>9}{'Go+XLA':>9}{'fit':>9}{'fit+XLA':>9}{'tf.fn':>9}{'tf.fn+XLA':>10}"
          f"{'fit/Go':>9}{'tf.fn/Go':>9}{'Go GFLOP/s':>12}{'MFU':>7}")
    for name, r in rows.items():
        best_go = min(r["go"], r["go_xla"])
        print(f"{name:8}{r['params']:>10}{r['go']:>8.1f}m{r['go_xla']:>8.1f}m{r['fit']:>8.1f}m{r['fit_xla']:>8.1f}m"
              f"{r['tf_function']:>8.1f}m{r['tf_function_xla']:>9.1f}m"
              f"{r['fit'] / best_go:>8.2f}x{r['tf_function'] / best_go:>8.2f}x{r['go_gflops']:>12.1f}{r['mfu']:>7.0%}")
    print("\nms/step; ratios are Keras time / best Go time (> 1: Go is faster); MFU against the MatMul GFLOP/s above.")


if __name__ == "__main__":
    sys.exit(main())
