"""Checkpoint save/restore benchmark: Go (cmd/benchckpt: streaming TensorBundle
writer, shards in parallel) vs Python's tf.train.Checkpoint on the same
machine, for ~1 GB and ~4 GB of float32 variables, with the peak RSS of each
and the disk's raw write speed (dd ... conv=fdatasync) for reference.

    make bench-checkpoint        # or: .venv/bin/python scripts/bench_checkpoint.py [--sizes 1,4]
"""

import argparse
import json
import os
import resource
import shutil
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
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["go", "build", "-o", os.path.join(tempfile.gettempdir(), "benchckpt"), "./cmd/benchckpt"], cwd=root, check=True)
    rows = []
    for gb in [float(s) for s in args.sizes.split(",")]:
        d = tempfile.mkdtemp(dir=args.dir)
        try:
            disk = dd_speed(d, min(gb, 2))
            def go_run(*extra):
                out = subprocess.run([os.path.join(tempfile.gettempdir(), "benchckpt"), "-gb", str(gb),
                                      "-var-mb", str(args.var_mb), "-dir", d, *extra],
                                     check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                for f in os.listdir(d):
                    os.remove(os.path.join(d, f))
                return json.loads(out)
            go = go_run()
            go_sync = go_run("-sync")
            go_graph = go_run("-in-graph")
            py = json.loads(subprocess.run([sys.executable, "-c", PY_CHILD, str(gb), str(args.var_mb), d],
                                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(d, ignore_errors=True)
        rows.append((gb, disk, go, py, go_sync, go_graph))
    print(f"{'GiB':>5}{'disk GB/s':>11}{'Go save':>10}{'Py save':>10}{'save x':>8}{'Go rest.':>10}{'Py rest.':>10}{'rest. x':>9}"
          f"{'Go RSS/peak':>14}{'Py RSS/peak':>14}{'Go save+fsync':>15}{'SaveV2 from Go':>16}")
    for gb, disk, go, py, go_sync, go_graph in rows:
        print(f"{gb:>5.1f}{disk:>11.2f}{go['save_s']:>9.2f}s{py['save_s']:>9.2f}s{py['save_s'] / go['save_s']:>7.2f}x"
              f"{go['restore_s']:>9.2f}s{py['restore_s']:>9.2f}s{py['restore_s'] / go['restore_s']:>8.2f}x"
              f"{go['rss_before_save_gb']:>7.2f}/{go['peak_rss_gb']:<6.2f}{py['rss_before_save_gb']:>7.2f}/{py['peak_rss_gb']:<6.2f}"
              f"{go_sync['save_s']:>14.2f}s{go_graph['save_s']:>8.2f}s/{go_graph['restore_s']:.2f}s")
    print("\nratios: Python time / Go time (> 1: Go is faster); RSS in GiB before the save / peak over save and restore.")
    print("Go saves like TensorFlow's writer, without fsync; 'Go save+fsync' syncs every file before the renames (durable);")
    print("'SaveV2 from Go' is save/restore with tfgo.Saver: TensorFlow's own kernels, run from Go.")


if __name__ == "__main__":
    sys.exit(main())
