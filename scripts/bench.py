"""`make bench`: every case of issue 21's table in one run on this machine, Go
beside Python on the same TensorFlow runtime, written as one markdown table
to bench/<date>-bench-<cpu>.md and printed.

The parts are the existing benchmarks, called as functions so that their
figures and the table's come from the same run: scripts/bench_train.py
(train steps, MatMul ceiling, MFU), scripts/bench_checkpoint.py (1 GiB
save/restore), plus SavedModel inference and load time here: the main job's
export (examples/transformer, trained briefly) and a Python model.export of
the same architecture, each run by Go (keraslike's BenchmarkSavedModel:
runner.Load + Run) and by Python (tf.saved_model.load + serving_default).

    make bench                  # or: .venv/bin/python scripts/bench.py [--steps N] [--out DIR]
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import bench_checkpoint  # noqa: E402
import bench_train  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

PY_SERVE = r"""
import json, os, statistics, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
d, iters, loads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
times = []
for _ in range(loads):
    t = time.perf_counter()
    m = tf.saved_model.load(d)
    times.append(time.perf_counter() - t)
f = m.signatures["serving_default"]
(key, spec), = f.structured_input_signature[1].items()
res = {"load_s": statistics.median(times), "input": key}
for batch in (1, 32):
    ids = tf.constant(np.random.default_rng(1).integers(0, 256, (batch, spec.shape[1]), dtype=np.int32))
    def run():
        t = time.perf_counter()
        out = f(**{key: ids})
        for v in out.values():
            v.numpy()
        return time.perf_counter() - t
    for _ in range(3):
        run()
    res["batch_%d_ms" % batch] = statistics.median(run() for _ in range(iters)) * 1e3
print(json.dumps(res))
"""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, **kw).stdout


def machine():
    model, flags, cores = platform.machine(), set(), os.cpu_count()
    try:
        for line in open("/proc/cpuinfo"):
            k, _, v = line.partition(":")
            if k.strip() == "model name" and model == platform.machine():
                model = v.strip()
            elif k.strip() == "flags" and not flags:
                flags = set(v.split())
    except OSError:
        pass
    have = ", ".join(f if f in flags else "no " + f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"))
    cores = len(os.sched_getaffinity(0))
    return model, have, cores


def main_job_config():
    # The main job's architecture is whatever its flags default to today.
    out = subprocess.run(["go", "run", "./examples/transformer", "-h"], cwd=ROOT, capture_output=True, text=True).stderr
    val = {k: int(re.search(r"-%s int\n.*\(default (\d+)\)" % k, out).group(1)) for k in ("layers", "dmodel", "heads", "seq")}
    return dict(layers=val["layers"], d=val["dmodel"], heads=val["heads"], seq=val["seq"])


def go_serve(model_dir, iters):
    out = sh(["go", "test", "./keraslike", "-run", "^$", "-bench", "^BenchmarkSavedModel$", "-benchtime", f"{iters}x"],
             env={**os.environ, "GOTF_BENCH_SAVEDMODEL": model_dir})
    res = {}
    for m in re.finditer(r"BenchmarkSavedModel/(\S+?)-\d+\s+\d+\s+\S+ ns/op\s+(\S+) median-ms", out):
        key = "load_s" if m.group(1) == "load" else m.group(1).replace("=", "_") + "_ms"
        res[key] = float(m.group(2)) / (1e3 if key == "load_s" else 1)
    if len(res) != 3:
        raise RuntimeError("BenchmarkSavedModel output not understood:\n" + out)
    return res


def py_serve(model_dir, iters, loads):
    return json.loads(subprocess.run([sys.executable, "-c", PY_SERVE, model_dir, str(iters), str(loads)],
                                     check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def kernel_time_infer(model_dir, traces=((1, 10), (32, 3))):
    """The kernel time of one serving_default run on one intra-op thread
    (cmd/benchinfer's FULL_TRACE step stats, summed over kernels): the work
    of a run, which no thread set-up can spread over the cores in less than
    this time divided by their number."""
    binary = os.path.join(tempfile.mkdtemp(prefix="benchinfer"), "benchinfer")
    sh(["go", "build", "-o", binary, "./cmd/benchinfer"])
    cmds = "".join(f"trace {b} {n}\n" for b, n in traces)
    out = subprocess.run([binary, "-dir", model_dir, "-config", "intra_op_parallelism_threads: 1"], input=cmds,
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()
    res = {}
    for (b, _), line in zip(traces, out[1:]):
        t = json.loads(line)
        res[f"kernel_{b}_ms"], res[f"matmul_{b}_ms"] = t["kernel_ms"], t["matmul_kernel_ms"]
    return res


def kernel_time_train(name, root, steps):
    """The kernel time of one train step on one intra-op thread (cmd/benchtrain
    -profile: one traced step's step stats), all kernels and the MatMuls."""
    prefix = os.path.join(tempfile.mkdtemp(prefix="benchtrain-profile"), name)
    out = sh([bench_train.go_binary(root), "-config", name, "-threads", "1", "-steps", str(steps), "-warmup", "1",
              "-profile", prefix])
    r = json.loads(out.strip().splitlines()[-1])
    return r["kernel_ms"], r["matmul_kernel_ms"]


def inference(work, main_steps, iters, loads, rounds=3):
    cfg = main_job_config()
    log(f"inference: the main job, {main_steps} steps, then its SavedModel export")
    job = os.path.join(work, "job")
    sh(["go", "run", "./examples/transformer", "-steps", str(main_steps), "-epochs", "1", "-corpus", str(1 << 20),
        "-sample", "1", "-out", job])
    exports = {"main job's export (Go)": max(glob.glob(os.path.join(job, "saved_model", "*")), key=lambda p: int(os.path.basename(p)))}
    log("inference: Python model.export of the same architecture")
    keras.backend.clear_session()
    exports["Python model.export"] = os.path.join(work, "keras_export")
    bench_train.gpt(cfg).export(exports["Python model.export"], verbose=False)
    res = {}
    for name, d in exports.items():
        # Go and Python alternate, so that a change in the machine's load
        # falls on both; each figure is the median over the rounds.
        log(f"inference: {name}: Go and Python alternating, {rounds} rounds")
        runs = [(go_serve(d, iters), py_serve(d, iters, loads)) for _ in range(rounds)]
        res[name] = tuple({k: statistics.median(r[side][k] for r in runs) for k in runs[0][side] if k != "input"}
                          for side in (0, 1))
        log(f"inference: {name}: kernel time on 1 intra-op thread (step stats)")
        res[name][0].update(kernel_time_infer(d))
    return cfg, res


def ratio(py, go):
    return f"{py / go:.2f}x"


def floor_row(case, kernel_ms, matmul_ms, cores, target):
    """A table row of the time a case's kernels take on one thread and the
    floor it sets: that time spread perfectly over every core."""
    return (f"| {case}: kernel time on 1 intra-op thread, ms (MatMuls) | {kernel_ms:.1f} ({matmul_ms:.1f}) | | "
            f"floor on {cores} cores {kernel_ms / cores:.1f} ms (MatMuls {matmul_ms / cores:.1f}); {target} |")


def table(args, info, peak, train, inf, ckpt, disk, started, elapsed, loads):
    model, flags, cores = info
    lines = [
        "# Go vs Python on the same TensorFlow runtime (issue 21)",
        "",
        f"`make bench` ({' '.join(sys.argv[1:]) or 'defaults'}), {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min",
        "",
        f"CPU: {model}; flags: {flags}; {cores} cores; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"{sh(['go', 'version']).strip()}; load average at start/end {loads[0]} / {loads[1]}",
        "",
        "| case | Go | Python | Go vs Python |",
        "|---|---|---|---|",
    ]
    for name, r in train.items():
        best_go = min(r["go"], r["go_xla"])
        best_py = min(r["fit"], r["fit_xla"], r["tf_function"], r["tf_function_xla"])
        lines.append(
            f"| {name} GPT train step, ms ({r['params']:,} params, {r['tokens']} tokens) | {r['go']:.1f}, +XLA {r['go_xla']:.1f} "
            f"| fit {r['fit']:.1f}, fit+XLA {r['fit_xla']:.1f}, tf.function {r['tf_function']:.1f}, tf.function+XLA {r['tf_function_xla']:.1f} "
            f"| {ratio(r['fit'], best_go)} fit, {ratio(best_py, best_go)} best Python |")
        if "go_threads1" in r:
            lines.append(f"| {name}, Go with 1 intra-op thread (no XLA), ms | {r['go_threads1']:.1f} | | "
                         f"default threads' time / this: {ratio(r['go'], r['go_threads1'])} |")
        if "kernel_ms" in r:
            if name == "small":
                target = f"2x fit and 1.2x best Python need ≤ {min(r['fit'] / 2, best_py / 1.2):.1f} ms"
            else:
                mfu80 = 6 * r["params"] * r["tokens"] / (0.8 * peak * 1e9) * 1e3
                target = f"1.2x best Python needs ≤ {best_py / 1.2:.1f} ms, 80% MFU ≤ {mfu80:.1f} ms"
            lines.append(floor_row(f"{name} step", r["kernel_ms"], r["matmul_ms"], cores, target))
    if "large" in train:
        r = train["large"]
        lines.append(f"| MFU of the large step (best Go; 6 x params x tokens / step) | {r['go_gflops']:.1f} GFLOP/s = {r['mfu']:.0%} | | |")
    lines.append(f"| MatMul ceiling (TensorFlow, 2048^2 float32, best of the run) | | {peak:.0f} GFLOP/s | |")
    for name, (g, p) in inf.items():
        for b in (1, 32):
            lines.append(f"| {name}, batch {b}, ms | {g[f'batch_{b}_ms']:.2f} | {p[f'batch_{b}_ms']:.2f} (saved_model.load signature) "
                         f"| {ratio(p[f'batch_{b}_ms'], g[f'batch_{b}_ms'])} |")
        for b, want in ((1, 1.5), (32, 1.1)):
            if f"kernel_{b}_ms" in g:
                lines.append(floor_row(f"{name}, batch {b}", g[f"kernel_{b}_ms"], g[f"matmul_{b}_ms"], cores,
                                       f"{want}x Python needs ≤ {p[f'batch_{b}_ms'] / want:.2f} ms"))
        lines.append(f"| {name}, SavedModel load, s | {g['load_s']:.3f} | {p['load_s']:.3f} | {ratio(p['load_s'], g['load_s'])} |")
    py = ckpt["Python"]
    # The zero IOMode's row first (what a user gets without options), then
    # the explicit modes it chooses between.
    default = "Go " + ckpt["Go default"][0]["io"]
    modes = [default] + [m for m in ("Go AutoIO", "Go DirectIO", "Go BufferedIO") if m != default and m in ckpt]
    label = {m: m + (", the default" if m == default else "") for m in modes}
    for side in modes:
        runs = ckpt[side]
        f, s = bench_checkpoint.first(runs), bench_checkpoint.steady(runs)
        pf, ps = bench_checkpoint.first(py), bench_checkpoint.steady(py)
        lines.append(f"| {args.ckpt_gb:g} GiB checkpoint save first / steady, s ({label[side]}) | {f:.2f} / {s:.2f} | {pf:.2f} / {ps:.2f} "
                     f"| {ratio(pf, f)} / {ratio(ps, s)} |")
    label["SaveV2 from Go"] = "SaveV2 from Go"
    for side in modes + ["SaveV2 from Go"]:
        r = bench_checkpoint.restore(ckpt[side])
        lines.append(f"| {args.ckpt_gb:g} GiB checkpoint restore, s ({label[side]}) | {r:.2f} | {bench_checkpoint.restore(py):.2f} "
                     f"| {ratio(bench_checkpoint.restore(py), r)} |")
    sv = bench_checkpoint.first(ckpt["SaveV2 from Go"])
    lines.append(f"| {args.ckpt_gb:g} GiB checkpoint save, s (SaveV2 from Go, one save) | {sv:.2f} | {bench_checkpoint.first(py):.2f} "
                 f"| {ratio(bench_checkpoint.first(py), sv)} |")
    cfg = args.inf_cfg
    lines += [
        "",
        "Go vs Python: Python time / Go time (> 1: Go is faster). All figures measured in this run.",
        f"Train steps: cmd/benchtrain (keraslike Fit, one session run per step) vs Keras 3 fit and a tf.function loop "
        f"(scripts/bench_train.py configurations {json.dumps(bench_train.CONFIGS)}); median ms/step over {args.steps} "
        f"steps after {args.warmup} warm-up, sides interleaved in rounds; 'best Python' is the fastest of the four. "
        f"MFU: the best Go step's model FLOP/s against the MatMul ceiling: the best of the MatMul rates measured in this run (at the start and after each configuration).",
        f"Inference: medians of {args.iters} runs after 3 warm-up, Go and Python alternating in 3 rounds, int32 token ids [batch, {cfg['seq']}]; Go is runner.Load "
        f"+ Model.Run (keraslike BenchmarkSavedModel), Python tf.saved_model.load(dir).signatures['serving_default'] with the "
        f"outputs fetched to numpy. The main job's export: `go run ./examples/transformer -steps {args.main_steps} -epochs 1` "
        f"(GPT {cfg['layers']} blocks, d_model {cfg['d']}, {cfg['heads']} heads, seq {cfg['seq']}); the Python export: "
        f"Keras model.export of bench_train.gpt with the same sizes. Load: median of {args.loads} loads in one process "
        f"(Go: {args.iters}).",
        f"Checkpoints: scripts/bench_checkpoint.py, {args.ckpt_gb:g} GiB of float32 variables in 64 MiB variables, "
        f"medians of {args.ckpt_reps} alternating runs of {args.saves} saves each; 'steady' is every save after the "
        f"second; Go's rows are savedmodel.IOMode (the default first); none fsyncs, as TensorFlow does not; disk dd conv=fdatasync {disk:.2f} GB/s.",
        "Kernel time on 1 intra-op thread: the step stats (FULL_TRACE) of one traced Go train step or the mean of traced "
        "inference runs (1 intra-op thread, so each kernel's time is its work, not its share of a parallel run), summed "
        "over every kernel and over the MatMul kernels. Divided by the cores it is a floor: no thread set-up runs "
        "these kernels in less, and Python runs the same kernels. Tracing adds a few microseconds per kernel.",
    ]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20, help="timed train steps per side")
    ap.add_argument("--warmup", type=int, default=3, help="untimed train steps first")
    ap.add_argument("--configs", default="small,large")
    ap.add_argument("--main-steps", type=int, default=20, help="training steps of the main job before its export")
    ap.add_argument("--iters", type=int, default=20, help="timed inference runs per batch size")
    ap.add_argument("--loads", type=int, default=5, help="SavedModel loads timed by Python")
    ap.add_argument("--ckpt-gb", type=float, default=1)
    ap.add_argument("--ckpt-reps", type=int, default=3)
    ap.add_argument("--saves", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"), help="directory of the report ('' prints only)")
    args = ap.parse_args()
    started, t0 = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    load_start = "%.1f" % os.getloadavg()[0]
    info = machine()
    work = tempfile.mkdtemp(prefix="gotf-bench-")
    try:
        args.inf_cfg, inf = inference(work, args.main_steps, args.iters, args.loads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sides, disk = bench_checkpoint.measure(args.ckpt_gb, reps=args.ckpt_reps, saves=args.saves, root=ROOT,
                                           extra_modes=False, log=log)
    peak, train = bench_train.measure(args.configs.split(","), args.steps, args.warmup, ROOT, log=log)
    if "small" in train:
        # The issue found TensorFlow's default thread set-up costing the small
        # step a third: one intra-op thread shows whether that still holds.
        log("train step: small, Go with 1 intra-op thread")
        train["small"]["go_threads1"] = bench_train.go("small", args.steps, args.warmup, False, ROOT, threads=1)
    for name, r in train.items():
        log(f"train step: {name}, kernel time on 1 intra-op thread (step stats of one step)")
        r["kernel_ms"], r["matmul_ms"] = kernel_time_train(name, ROOT, 6 if name == "small" else 2)
    text = table(args, info, peak, train, inf, sides, disk, started, time.perf_counter() - t0,
                 (load_start, "%.1f" % os.getloadavg()[0]))
    print(text)
    if args.out:
        name = re.sub(r"[^a-z0-9]+", "-", info[0].lower()).strip("-") or "cpu"
        path = os.path.join(args.out, f"{started:%Y-%m-%d}-bench-{name}.md")
        with open(path, "w") as f:
            f.write(text)
        log(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
