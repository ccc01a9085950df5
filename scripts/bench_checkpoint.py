"""Checkpoint save/restore benchmark: Go (cmd/benchckpt: streaming TensorBundle
writer and reader, shards in parallel, savedmodel.IOMode) vs Python's tf.train.Checkpoint on the same
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
import glob, json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
gb, var_mb, d, saves = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
n = int(gb * 1024 / var_mb)
rows = var_mb * (1 << 20) // 4 // 1024
vs = [tf.Variable(tf.random.stateless_normal([rows, 1024], seed=[i, 0])) for i in range(n)]
ck = tf.train.Checkpoint(vars=vs)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)
times, prev = [], None
for k in range(saves):
    t = time.perf_counter()
    path = ck.write(os.path.join(d, "py_ckpt-%d" % (k + 1)))
    times.append(time.perf_counter() - t)
    if prev:
        for f in glob.glob(prev + ".*"):
            os.remove(f)
    prev = path
t = time.perf_counter()
ck.read(path).assert_consumed()
restore = time.perf_counter() - t
print(json.dumps({"saves_s": times, "restore_s": restore, "rss_before_save_gb": rss_before,
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


def first(runs):
    return statistics.median(r["saves_s"][0] if "saves_s" in r else r["save_s"] for r in runs)


def steady(runs):
    # The first two saves find no freed checkpoint memory to reuse.
    vals = [x for r in runs for x in r.get("saves_s", [])[2:]]
    return statistics.median(vals) if vals else None


def restore(runs):
    return statistics.median(r["restore_s"] for r in runs)


def measure(gb, var_mb=64, reps=3, saves=5, where=None, root=None, extra_modes=True, log=None):
    """Save/restore of gb GiB of variables by every side, alternating: a dict
    side -> list of runs (each the JSON of cmd/benchckpt or PY_CHILD), and the
    disk's dd speed in GB/s. scripts/bench.py calls it for `make bench`."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = os.path.join(tempfile.gettempdir(), "benchckpt")
    subprocess.run(["go", "build", "-o", exe, "./cmd/benchckpt"], cwd=root, check=True)
    d = tempfile.mkdtemp(dir=where)

    def run(cmd):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        return json.loads(out)

    def go(*extra):
        return run([exe, "-gb", str(gb), "-var-mb", str(var_mb), "-dir", d, "-saves", str(saves), *extra])

    # The default mode's row first: it is what a user gets without options.
    sides = {"Go default": [], "Python": [], "Go BufferedIO": [], "Go DirectIO": []}
    try:
        disk = dd_speed(d, min(gb, 2))
        # Alternate the sides so that none always meets the memory the
        # one before freed: on a VM, memory the guest freed a few seconds
        # ago is fast to take again and older free memory is slow.
        for i in range(reps):
            if log:
                log(f"checkpoint {gb:g} GiB: round {i + 1}/{reps}")
            sides["Go default"].append(go("-io", "default"))
            sides["Python"].append(run([sys.executable, "-c", PY_CHILD, str(gb), str(var_mb), d, str(saves)]))
            sides["Go BufferedIO"].append(go("-io", "buffered"))
            sides["Go DirectIO"].append(go("-io", "direct"))
        if extra_modes:
            sides["Go default+fsync"] = [go("-io", "default", "-sync")]
        sides["SaveV2 from Go"] = [go("-in-graph")]
        # Also under the mode's own name ("Go AutoIO"), for scripts/bench.py.
        sides.setdefault("Go " + sides["Go default"][0]["io"], sides["Go default"])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return sides, disk


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,4", help="GiB of variables, comma-separated")
    ap.add_argument("--var-mb", type=int, default=64)
    ap.add_argument("--dir", default=None, help="where checkpoints go (default: a temp dir under /tmp)")
    ap.add_argument("--reps", type=int, default=3, help="alternating runs of each side")
    ap.add_argument("--saves", type=int, default=5, help="saves in a row per run (each removes the one before)")
    args = ap.parse_args()
    print(f"{'GiB':>4} {'side':<24}{'first save':>12}{'steady save':>13}{'restore':>10}{'RSS before/peak':>17}   single runs (first save; restore)")
    for gb in [float(x) for x in args.sizes.split(",")]:
        sides, disk = measure(gb, args.var_mb, args.reps, args.saves, args.dir)
        py = sides["Python"]
        shown = []
        for name, runs in sides.items():
            if any(runs is r for r in shown):
                continue  # the default mode's alias (see measure)
            shown.append(runs)
            if name == "Go default":
                name = f"Go default ({runs[0]['io']})"
            def cell(v, ref):
                if v is None:
                    return f"{'-':>12}"
                return f"{v:>6.2f}s" + (f" {ref / v:>4.1f}x" if name != "Python" else " " * 6)
            f, st, r = first(runs), steady(runs), restore(runs)
            singles = ", ".join(f"{x['saves_s'][0] if 'saves_s' in x else x['save_s']:.2f}; {x['restore_s']:.2f}" for x in runs)
            print(f"{gb:>4.0f} {name:<24}{cell(f, first(py))}{cell(st, steady(py) or 0) if st else f'{chr(45):>13}':>13}"
                  f"{cell(r, restore(py))}{runs[0]['rss_before_save_gb']:>8.2f}/{max(x['peak_rss_gb'] for x in runs):<8.2f}  [{singles}]")
        print(f"{'':>4} disk: dd conv=fdatasync {disk:.2f} GB/s")
    print(f"\nmedians of {args.reps} alternating runs of {args.saves} saves each; 'steady' is every save after the second (the")
    print("first two find no freed checkpoint memory to reuse); ratios: Python time / Go time (> 1: Go is faster). RSS in GiB.")
    print("Go's rows are savedmodel.IOMode (WriteOptions.IO, ReadOptions.IO); 'Go default' is the zero value, what a")
    print("zero WriteOptions uses (SaveCheckpoint, which syncs, writes with DirectIO). DirectIO writes around the page cache with O_DIRECT and reads what")
    print("the page cache holds from it, the rest with O_DIRECT; BufferedIO goes through it, like TensorFlow; AutoIO writes")
    print("each 16 MiB chunk the way it measures faster (all with O_DIRECT when synced) and reads as BufferedIO. None")
    print("fsyncs, as TensorFlow does not, except 'Go default+fsync' (durable: all O_DIRECT, as SaveCheckpoint). 'SaveV2 from Go' is")
    print("tfgo.Saver: TensorFlow's own kernels run from Go.")


if __name__ == "__main__":
    sys.exit(main())
