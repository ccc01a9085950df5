"""Checkpoint save/restore benchmark: Go (cmd/benchckpt: streaming TensorBundle
writer, shards in parallel) vs Python's tf.train.Checkpoint on the same
machine, for ~1 GB and ~4 GB of float32 variables, with the peak RSS of each
and the disk's raw write speed (dd ... conv=fdatasync) for reference.

    make bench-checkpoint        # or: .venv/bin/python scripts/bench_checkpoint.py [--sizes 1,4]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PY_CHILD = r"""
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
gb, var_mb, d = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n = int(gb * 1024 / var_mb)
rows = var_mb * (1 << 20) // 4 // 1024
vs = [tf.Variable(tf.random.stateless_normal([rows, 1024], seed=[i, 0])) for i in range(n)]
ck = tf.train.Checkpoint(vars=vs)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)
t = time.perf_counter()
path = ck.write(os.path.join(d, "py_ckpt"))
save = time.perf_counter() - t
t = time.perf_counter()
ck.read(path).assert_consumed()
restore = time.perf_counter() - t
print(json.dumps({"save_s": save, "restore_s": restore, "rss_before_save_gb": rss_before,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)}))
"""


def dd_speed(d, gb):
    f = os.path.join(d, "dd.bin")
    t = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", "of=" + f, "bs=1M", "count=%d" % int(gb * 1024), "conv=fdatasync"],
                   check=True, capture_output=True)
    speed = gb / (time.perf_counter() - t)
    os.remove(f)
    return speed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,4", help="GiB of variables, comma-separated")
    ap.add_argument("--var-mb", type=int, default=64)
    ap.add_argument("--dir", default=None, help="where checkpoints go (default: a temp dir under /tmp)")
    ap.add_argument("--reps", type=int, default=3, help="alternating runs of each side")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["go", "build", "-o", os.path.join(tempfile.gettempdir(), "benchckpt"), "./cmd/benchckpt"], cwd=root, check=True)
    rows = []
    for gb in [float(x) for x in args.sizes.split(",")]:
        d = tempfile.mkdtemp(dir=args.dir)

        def clean():
            for f in os.listdir(d):
                os.remove(os.path.join(d, f))

        def go_run(*extra):
            out = subprocess.run([os.path.join(tempfile.gettempdir(), "benchckpt"), "-gb", str(gb),
                                  "-var-mb", str(args.var_mb), "-dir", d, *extra],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            clean()
            return json.loads(out)

        def py_run():
            out = subprocess.run([sys.executable, "-c", PY_CHILD, str(gb), str(args.var_mb), d],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            clean()
            return json.loads(out)

        try:
            disk = dd_speed(d, min(gb, 2))
            # Alternate the two so that neither always meets the page cache
            # the other left behind (write-back dominates timings on a VM).
            go, py = [], []
            for _ in range(args.reps):
                go.append(go_run())
                py.append(py_run())
            go_sync = go_run("-sync")
            go_graph = go_run("-in-graph")
        finally:
            shutil.rmtree(d, ignore_errors=True)
        rows.append((gb, disk, go, py, go_sync, go_graph))

    def med(runs, key):
        return statistics.median(r[key] for r in runs)

    print(f"{'GiB':>5}{'disk GB/s':>11}{'Go save':>10}{'Py save':>10}{'save x':>8}{'Go rest.':>10}{'Py rest.':>10}{'rest. x':>9}"
          f"{'Go RSS/peak':>14}{'Py RSS/peak':>14}{'Go save+fsync':>15}{'SaveV2 from Go':>16}")
    for gb, disk, go, py, go_sync, go_graph in rows:
        gs, ps, gr, pr = med(go, "save_s"), med(py, "save_s"), med(go, "restore_s"), med(py, "restore_s")
        print(f"{gb:>5.1f}{disk:>11.2f}{gs:>9.2f}s{ps:>9.2f}s{ps / gs:>7.2f}x{gr:>9.2f}s{pr:>9.2f}s{pr / gr:>8.2f}x"
              f"{go[0]['rss_before_save_gb']:>7.2f}/{max(r['peak_rss_gb'] for r in go):<6.2f}"
              f"{py[0]['rss_before_save_gb']:>7.2f}/{max(r['peak_rss_gb'] for r in py):<6.2f}"
              f"{go_sync['save_s']:>14.2f}s{go_graph['save_s']:>8.2f}s/{go_graph['restore_s']:.2f}s")
        print(f"{'':5}{'':11} runs: Go save {[round(r['save_s'], 2) for r in go]}, Python save {[round(r['save_s'], 2) for r in py]}")
    print(f"\nmedians of {args.reps} alternating runs; ratios: Python time / Go time (> 1: Go is faster);")
    print("RSS in GiB before the save / peak over save and restore. Go saves like TensorFlow's writer, without fsync;")
    print("'Go save+fsync' syncs every file before the renames (durable); 'SaveV2 from Go' is tfgo.Saver (TensorFlow's kernels).")


if __name__ == "__main__":
    sys.exit(main())
