"""Writes HDF5 files of every kind package h5 reads, with h5py and Keras,
and a manifest of what numpy/h5py read from them (the expected values of
the Go tests, computed in the same run).

Used by TestReadH5pyFiles (through the interop harness: write_all(dir)) and
to regenerate the fuzz seed corpus (FuzzOpen adds testdata/seeds/*.h5):
    .venv/bin/python internal/h5/testdata/h5files.py seeds internal/h5/testdata/seeds
"""
import base64
import json
import os
import sys

import h5py
import ml_dtypes
import numpy as np

NUMERIC = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"}


def _content(f, big=True):
    rng = np.random.default_rng(7)
    g = f.create_group("numbers")
    for t in sorted(NUMERIC) if big else ("int8", "uint16", "float32", "float64"):
        g[t] = (rng.standard_normal((3, 4)) * 50).astype(t)
    g["scalar"] = np.float64(2.5)
    g["empty"] = np.zeros((0, 3), "float32")
    g["be"] = np.arange(3, dtype=">f4")
    g["f16"] = np.arange(3, dtype="<f2")
    g["bf16"] = np.arange(3).astype(ml_dtypes.bfloat16)  # h5py: 2-byte opaque, as Keras saves bfloat16
    g["strs"] = np.array([b"x", b"yz"])
    c = f.create_group("chunked")
    c.create_dataset("gzip_shuffle", data=rng.standard_normal((10, 7)).astype("f4"), chunks=(4, 3),
                     compression="gzip", shuffle=True)
    c.create_dataset("fletcher", data=np.arange(50, dtype="i8"), chunks=(8,), fletcher32=True)
    c.create_dataset("plain", data=rng.standard_normal((5, 6, 7)), chunks=(2, 3, 4))
    c.create_dataset("partial", shape=(20,), dtype="i4", chunks=(5,))
    c["partial"][5:10] = np.arange(5)
    c.create_dataset("partial_fill", shape=(20,), dtype="f4", chunks=(5,), fillvalue=-7.5)
    c["partial_fill"][5:10] = np.arange(5)
    f.create_dataset("unwritten_fill", shape=(3, 2), dtype="i8", fillvalue=42)
    c.create_dataset("fixed_max", data=np.arange(30, dtype="f4"), chunks=(7,), maxshape=(40,))
    c.create_dataset("single", data=np.arange(12, dtype="u2").reshape(3, 4), chunks=(3, 4), compression="gzip")
    c.create_dataset("two_unlimited", data=np.arange(24, dtype="f8").reshape(4, 6), chunks=(2, 2),
                     maxshape=(None, None), compression="gzip")
    c.create_dataset("one_unlimited", data=np.arange(10, dtype="f4"), chunks=(3,), maxshape=(None,))
    if big:
        # Secondary blocks of an extensible array; a paged fixed array (and
        # a multi-level chunk B-tree under libver earliest).
        c.create_dataset("unlimited_many", data=np.arange(700, dtype="i4"), chunks=(1,), maxshape=(None,))
        c.create_dataset("fixed_paged", data=np.arange(3000, dtype="i2"), chunks=(1,))
    c.create_dataset("unlimited_last", data=np.arange(60, dtype="f8").reshape(5, 12), chunks=(2, 5),
                     maxshape=(8, None), compression="gzip", shuffle=True)
    # Early allocation without filters: the implicit index (libver latest).
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((4,))
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    ds = h5py.h5d.create(c.id, b"early", h5py.h5t.NATIVE_INT16, h5py.h5s.create_simple((10,)), dcpl=dcpl)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(10, dtype="i2"))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    ds = h5py.h5d.create(f.id, b"compact", h5py.h5t.NATIVE_INT32, h5py.h5s.create_simple((4,)), dcpl=dcpl)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(4, dtype="i4"))
    a = f.attrs
    a["vlen"] = "a str é"
    a["vlen_list"] = ["alpha", "beta", "γ", ""]
    a["fixed"] = np.bytes_(b"tensorflow")
    a["fixed_list"] = np.array([b"a", b"bcd"])
    a["empty"] = np.array([])
    a["number"] = 3
    many = f.create_group("many")
    for i in range(40 if big else 10):
        many.attrs["attr%02d" % i] = "value %d" % i
        if big:
            many.create_group("g%02d" % i)
        else:
            many["d%02d" % i] = np.int8(i)
    if big:
        wide = f.create_group("wide")
        for i in range(600):
            wide["d%03d" % i] = np.int8(i % 100)
        a["big_vlen"] = "x" * 70000
    f["soft"] = h5py.SoftLink("/numbers/int8")


def write_all(d, big=True):
    """Writes the h5py files into d and returns their names."""
    names = []
    for libver in ("earliest", "latest"):
        name = "h5py_%s.h5" % libver
        with h5py.File(os.path.join(d, name), "w", libver=libver) as f:
            _content(f, big)
            if libver == "latest" and big:
                # A > 64 KiB fixed-length attribute: dense attribute storage,
                # a huge fractal heap object.
                f["many"].attrs["big_fixed"] = np.array([b"%05d" % i * 20 for i in range(1000)])
        names.append(name)
    name = "userblock.h5"
    with h5py.File(os.path.join(d, name), "w", userblock_size=1024) as f:
        f["x"] = np.arange(5, dtype="i4")
        f.attrs["backend"] = "tensorflow"
    names.append(name)
    return names


def write_keras(d, legacy=True):
    """Writes a small Keras model's .weights.h5 and legacy .h5."""
    import keras
    inp = keras.Input((3,))
    x = keras.layers.Dense(4, name="dense")(inp)
    x = keras.layers.LayerNormalization(name="norm")(x)
    m = keras.Model(inp, keras.layers.Dense(2, name="out")(x))
    names = ["keras.weights.h5"]
    m.save_weights(os.path.join(d, names[0]))
    if legacy:
        m.save(os.path.join(d, "keras_legacy.h5"))
        names.append("keras_legacy.h5")
    return names


def _strings(v):
    if isinstance(v, (bytes, str)):
        return [v.decode() if isinstance(v, bytes) else v], True
    if isinstance(v, np.ndarray) and v.ndim == 1 and (v.dtype.kind in "SO" or (v.size == 0 and v.dtype.kind in "fiu")):
        return [x.decode() if isinstance(x, bytes) else x for x in v], False
    if isinstance(v, np.bytes_):
        return [v.decode()], True
    return None, None


def manifest(path):
    """What h5py and numpy read: groups with members and string attributes,
    datasets with dtype, shape and little-endian bytes (or unsupported)."""
    out = {"groups": {}, "datasets": {}}
    with h5py.File(path, "r") as f:
        def group(name, g):
            members = []
            for k in g:
                lk = g.get(k, getlink=True)
                kind = "other"
                if isinstance(lk, h5py.HardLink):
                    kind = "group" if isinstance(g[k], h5py.Group) else "dataset"
                members.append([k, kind])
            attrs = {}
            for k in g.attrs:
                try:
                    vals, scalar = _strings(g.attrs[k])
                except Exception:
                    continue
                if vals is not None:
                    attrs[k] = {"values": vals, "scalar": scalar}
            out["groups"][name] = {"members": members, "attrs": attrs}

        def visit(name, obj):
            full = "/" + name
            if isinstance(obj, h5py.Group):
                group(full, obj)
                return
            dt = obj.dtype
            rec = {"shape": list(obj.shape)}
            if dt.name in NUMERIC and dt.byteorder in "<=|":
                v = obj[()]
                rec["dtype"] = dt.name
                rec["data"] = base64.b64encode(np.ascontiguousarray(v, dtype=dt.newbyteorder("<")).tobytes()).decode()
            elif dt.kind == "V" and dt.itemsize == 2 and not dt.fields:
                rec["dtype"] = "2-byte opaque"
                rec["data"] = base64.b64encode(np.ascontiguousarray(obj[()]).tobytes()).decode()
            else:
                rec["dtype"] = "unsupported:" + str(dt)
            if obj.chunks is not None and obj.id.get_create_plist().get_layout() == h5py.h5d.CHUNKED:
                rec["chunked"] = True
            out["datasets"][full] = rec
        group("/", f)
        f.visititems(visit)
    return out


def write_manifests(d, names):
    for n in names:
        with open(os.path.join(d, n + ".json"), "w") as fh:
            json.dump(manifest(os.path.join(d, n)), fh)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "seeds":
    # Small seed files for FuzzOpen (testdata/seeds/*.h5).
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for n in write_all(out, big=False) + write_keras(out, legacy=True):
        print(n, os.path.getsize(os.path.join(out, n)))
