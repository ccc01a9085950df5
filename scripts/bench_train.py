"""Side-by-side train-step benchmark: Go (keraslike, one session run per
step) vs Keras 3 on the same TensorFlow runtime, machine and run.

For the two GPT configurations of the keraslike issue it times Keras
model.fit and a tf.function training loop (each without and with XLA), runs
cmd/benchtrain for Go (without and with XLA), measures TensorFlow's MatMul
GFLOP/s on this machine, and prints a table of ms/step, ratios and model
FLOP/s (6 x params x tokens / step time).

    make bench-train            # or: .venv/bin/python scripts/bench_train.py [--steps N] [--rounds R]

Step times are medians over every timed step of every round; the sides run
interleaved (round by round) so that a shared machine's noise falls on all.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
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


class _StepTimes(keras.callbacks.Callback):
    """Each fit step's wall time, from the previous batch's end (or the
    epoch's start) to this one's: what cmd/benchtrain records for Go."""

    def on_epoch_begin(self, epoch, logs=None):
        self.last, self.ms = time.perf_counter(), []

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.ms.append((now - self.last) * 1e3)
        self.last = now


def keras_fit(c, warmup, jit):
    """A Keras model.fit side, built and warmed up once: the returned
    function runs `steps` more steps and returns their times (ms)."""
    keras.backend.clear_session()
    m = gpt(c)
    m.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    x, y = data(c, warmup)
    m.fit(x, y, batch_size=c["batch"], epochs=1, verbose=0)

    def run(steps):
        x, y = data(c, steps)
        cb = _StepTimes()
        m.fit(x, y, batch_size=c["batch"], epochs=1, verbose=0, callbacks=[cb])
        return cb.ms

    return run, m.count_params()


def tf_loop(c, warmup, jit):
    """A tf.function training loop side (Python's leanest path), built and
    warmed up once; each step's time ends with its loss on the host, as
    Go's and fit's steps do."""
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

    def batches(steps):
        x, y = data(c, steps)
        return [(tf.constant(x[i * c["batch"]:(i + 1) * c["batch"]]), tf.constant(y[i * c["batch"]:(i + 1) * c["batch"]]))
                for i in range(steps)]

    for b in batches(warmup):
        step(*b).numpy()

    def run(steps):
        ms = []
        for b in batches(steps):
            t = time.perf_counter()
            step(*b).numpy()
            ms.append((time.perf_counter() - t) * 1e3)
        return ms

    return run


def go_binary(root):
    """cmd/benchtrain built once, so that no round pays for the compiler."""
    out = os.path.join(tempfile.mkdtemp(prefix="benchtrain"), "benchtrain")
    subprocess.run(["go", "build", "-o", out, "./cmd/benchtrain"], cwd=root, check=True)
    return out


def go_steps(binary, c_name, steps, warmup, xla, root, threads=0, inter=0, cpu=None):
    """One Go process: its timed steps' times (ms); its CPU ms per step is
    appended to cpu when given."""
    cmd = [binary, "-config", c_name, "-steps", str(steps), "-warmup", str(warmup), "-threads", str(threads),
           "-inter", str(inter)]
    if xla:
        cmd.append("-xla")
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    if cpu is not None:
        cpu.append(res["cpu_ms_per_step"])
    return res["step_ms"]


def go(c_name, steps, warmup, xla, root, threads=0):
    """The median step time (ms) of one Go process."""
    return float(np.median(go_steps(go_binary(root), c_name, steps, warmup, xla, root, threads)))


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


def measure(configs=("small", "large"), steps=30, warmup=5, root=None, log=None, rounds=3, extra_go=()):
    """Every side of every configuration in this process and run: the MatMul
    ceiling (GFLOP/s) and per configuration a dict of ms/step (the median
    over every timed step of every round), params and tokens per step.
    The sides run interleaved: each round runs every side once, in an order
    rotated from round to round, so that a busy moment of a shared machine
    falls on all of them. extra_go lists further Go sides as (key, threads,
    inter-op threads). scripts/bench.py calls it for `make bench`."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = go_binary(root)
    # The ceiling is the best MatMul rate seen: on a shared machine one
    # measurement can catch a busy moment and make MFU exceed 100%.
    peak = matmul_gflops()
    rows = {}
    for name in configs:
        c = CONFIGS[name]
        if log:
            log(f"train step: {name} (Keras fit, tf.function, Go; each without and with XLA; {rounds} rounds)")
        r = {}
        fit, r["params"] = keras_fit(c, warmup, False)
        sides = {
            "fit": fit,
            "fit_xla": keras_fit(c, warmup, True)[0],
            "tf_function": tf_loop(c, warmup, False),
            "tf_function_xla": tf_loop(c, warmup, True),
            "go": lambda cpu: go_steps(binary, name, steps, warmup, False, root, cpu=cpu),
            "go_xla": lambda cpu: go_steps(binary, name, steps, warmup, True, root, cpu=cpu),
        }
        for key, threads, inter in extra_go:
            sides[key] = (lambda t, i: lambda cpu: go_steps(binary, name, steps, warmup, False, root, t, i, cpu))(threads, inter)
        times = {k: [] for k in sides}
        cpu = {k: [] for k in sides}
        keys = list(sides)
        for rnd in range(rounds):
            order = keys[rnd % len(keys):] + keys[:rnd % len(keys)]
            for k in order:
                if k.startswith("go"):
                    times[k] += sides[k](cpu[k])
                else:
                    # This process's CPU time (every thread): what a step
                    # costs, less inflated than wall time on a busy machine.
                    t = time.process_time()
                    times[k] += sides[k](steps)
                    cpu[k].append((time.process_time() - t) * 1e3 / steps)
        for k, ms in times.items():
            r[k] = float(np.median(ms))
            r[k + "_cpu"] = float(np.median(cpu[k]))
        peak = max(peak, matmul_gflops())
        r["tokens"] = c["batch"] * c["seq"]
        r["load"] = os.getloadavg()[0]
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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--go-threads", action="append", default=[], metavar="INTRA,INTER",
                    help="also time Go with these thread pools (repeatable)")
    args = ap.parse_args()
    extra = [(f"go_t{t}", int(t.split(",")[0]), int(t.split(",")[1])) for t in args.go_threads]
    peak, rows = measure(args.configs.split(","), args.steps, args.warmup, rounds=args.rounds, extra_go=extra,
                         log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; MatMul 2048^2 float32: {peak:.0f} GFLOP/s on this machine")
    print()
    print(f"{'config':8}{'params':>10}{'Go':>9}{'Go+XLA':>9}{'fit':>9}{'fit+XLA':>9}{'tf.fn':>9}{'tf.fn+XLA':>10}"
          f"{'fit/Go':>9}{'tf.fn/Go':>9}{'Go GFLOP/s':>12}{'MFU':>7}")
    for name, r in rows.items():
        best_go = min(r["go"], r["go_xla"])
        print(f"{name:8}{r['params']:>10}{r['go']:>8.1f}m{r['go_xla']:>8.1f}m{r['fit']:>8.1f}m{r['fit_xla']:>8.1f}m"
              f"{r['tf_function']:>8.1f}m{r['tf_function_xla']:>9.1f}m"
              f"{r['fit'] / best_go:>8.2f}x{r['tf_function'] / best_go:>8.2f}x{r['go_gflops']:>12.1f}{r['mfu']:>7.0%}")
    print("\nCPU ms per step (user + system, every thread of the process; median over rounds)")
    for name, r in rows.items():
        print(f"{name:8}{'':>10}" + "".join(f"{r[k + '_cpu']:>8.1f}m" for k in ("go", "go_xla", "fit", "fit_xla", "tf_function"))
              + f"{r['tf_function_xla_cpu']:>9.1f}m")
    for name, r in rows.items():
        for key, *_ in extra:
            print(f"{name}: Go with intra,inter threads {key[4:]}: {r[key]:.1f} ms, CPU {r[key + '_cpu']:.1f} ms")
        print(f"{name}: load average (1 min) at the end: {r['load']:.2f}")
    print("\nmedian ms/step over every timed step of every round (sides interleaved); ratios are Keras time / best Go time (> 1: Go is faster); MFU against the MatMul GFLOP/s above.")


if __name__ == "__main__":
    sys.exit(main())
