"""Interleaved Go-vs-Python inference timing of one SavedModel's serving_default.

Go: cmd/benchinfer (runner.Load + Model.Run), one process per configuration
kept loaded for the whole comparison. Python: tf.saved_model.load(dir)
.signatures['serving_default'] in this process, outputs fetched to numpy.
Rounds alternate Go and Python (each configuration, then Python) so that the
machine's load falls on both; the figures are medians over every round.

    .venv/bin/python cmd/benchinfer/compare.py DIR [--rounds 5] [--iters 10] \
        [--go NAME='CONFIG TEXT'] [--go-env NAME=VAR=VALUE] [--trace]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Go:
    def __init__(self, binary, d, config, env, extra):
        args = [binary, "-dir", d] + (["-config", config] if config else []) + extra
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, **env})
        self.load_s = json.loads(self.p.stdout.readline())["load_s"]

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def py_runner(d):
    m = tf.saved_model.load(d)
    f = m.signatures["serving_default"]
    (key, spec), = f.structured_input_signature[1].items()
    feeds = {}

    def run(batch, n):
        if batch not in feeds:
            feeds[batch] = tf.constant(np.random.default_rng(1).integers(0, 256, (batch, spec.shape[1]), dtype=np.int32))
            for _ in range(3):
                one(batch)
        c = time.process_time()
        ms = [one(batch) for _ in range(n)]
        return ms, (time.process_time() - c) * 1e3 / n

    def one(batch):
        t = time.perf_counter()
        out = f(**{key: feeds[batch]})
        for v in out.values():
            v.numpy()
        return (time.perf_counter() - t) * 1e3
    return run, f


def py_trace(f, key, batch, seq):
    from tensorflow.python.eager import context
    ids = tf.constant(np.random.default_rng(1).integers(0, 256, (batch, seq), dtype=np.int32))
    context.enable_run_metadata()
    f(**{key: ids})
    md = context.export_run_metadata()
    context.disable_run_metadata()
    ops = {}
    for fg in md.function_graphs:
        for g in fg.partition_graphs:
            for n in g.node:
                ops[n.op] = ops.get(n.op, 0) + 1
    return ops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--go", action="append", default=[], help="NAME=ConfigProto text (repeatable); default: one, runner's defaults")
    ap.add_argument("--go-env", action="append", default=[], help="NAME=VAR=VALUE: environment of configuration NAME")
    ap.add_argument("--go-args", action="append", default=[], help="NAME=ARG: extra benchinfer flag of configuration NAME")
    ap.add_argument("--trace", action="store_true", help="print per-op step stats (Go) and op counts (both)")
    ap.add_argument("--trace-top", type=int, default=12)
    ap.add_argument("--trace-runs", type=int, default=5)
    a = ap.parse_args()
    binary = os.path.join("/tmp", "benchinfer-%d" % os.getpid())
    subprocess.run(["go", "build", "-o", binary, "./cmd/benchinfer"], cwd=ROOT, check=True)
    confs = dict(c.split("=", 1) for c in a.go) or {"go": ""}
    envs, extra = {n: {} for n in confs}, {n: [] for n in confs}
    for e in a.go_env:
        n, kv = e.split("=", 1)
        k, v = kv.split("=", 1)
        envs[n][k] = v
    for e in a.go_args:
        n, arg = e.split("=", 1)
        extra[n].append(arg)
    batches = [int(b) for b in a.batches.split(",")]
    gos = {n: Go(binary, a.dir, c, envs[n], extra[n]) for n, c in confs.items()}
    py, f = py_runner(a.dir)
    times = {(n, b): [] for n in list(confs) + ["python"] for b in batches}
    cpu = {k: [] for k in times}
    for r in range(a.rounds):
        for b in batches:
            for n, g in gos.items():
                res = g.ask(f"run {b} {a.iters}")
                times[(n, b)] += res["ms"]
                cpu[(n, b)].append(res["cpu_ms"])
                ms, c = py(b, a.iters)
                times[("python", b)] += ms
                cpu[("python", b)].append(c)
    load = os.getloadavg()
    print(f"# {a.dir}: medians of {a.rounds} interleaved rounds x {a.iters} runs; load average {load[0]:.2f} {load[1]:.2f}")
    for b in batches:
        p = statistics.median(times[("python", b)])
        pc = statistics.median(cpu[("python", b)])
        print(f"batch {b:3d}  {'python':20s} {p:8.2f} ms  cpu {pc:8.2f} ms/run")
        for n in confs:
            g = statistics.median(times[(n, b)])
            gc = statistics.median(cpu[(n, b)])
            print(f"batch {b:3d}  {n:20s} {g:8.2f} ms  cpu {gc:8.2f} ms/run   python/go {p / g:.2f}x")
    if a.trace:
        for n, g in gos.items():
            for b in batches:
                t = g.ask(f"trace {b} {a.trace_runs}")
                # The single-threaded executor collects no step stats.
                print(f"## {n} batch {b}: top ops\n" + "\n".join((t["op_ms"] or ["(no step stats)"])[:a.trace_top]))
                print(f"## {n} graph ops: " + json.dumps(dict(sorted((t["graph_ops"] or {}).items(), key=lambda kv: -kv[1]))))
        (key, spec), = f.structured_input_signature[1].items()
        print("## python function graph ops: " + json.dumps(dict(sorted(py_trace(f, key, 1, spec.shape[1]).items(), key=lambda kv: -kv[1]))))
    for g in gos.values():
        g.close()


if __name__ == "__main__":
    main()
