"""Reference worker for the Go package internal/pyref.

Protocol: one JSON object per line on stdin and stdout.

  start-up  -> {"ready": true, "python": "...", "tensorflow": "..."}
  request   <- {"code": "<python source>", "inputs": {name: array}}
  response  -> {"outputs": {name: array}} or {"error": "<traceback>"}

An array is {"dtype": d, "shape": [...], "data": base64(raw little-endian
row-major bytes)}, or for d == "string" {"dtype": "string", "shape": [...],
"strings": [base64(element bytes), ...]}.

Before each line it writes to stdout, the worker writes SYNC_MARKER to
stderr, so that the Go side can tell when it has seen all the stderr output
that precedes the response. The worker exits when stdin reaches end of file.
"""

import base64
import json
import linecache
import os
import sys
import traceback

# Keep the protocol streams for ourselves, at the file descriptor level, so
# that nothing else (user print(), C extensions, TensorFlow) can read from or
# write to them: fd 1 becomes a copy of stderr and fd 0 reads /dev/null.
_proto_in = os.fdopen(os.dup(0), "rb")
_proto_out = os.fdopen(os.dup(1), "w", encoding="ascii", newline="\n")
os.dup2(2, 1)
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
os.close(_devnull)
sys.stdout = sys.stderr

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_DTYPES = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "float16", "float32", "float64",
        "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64",
        "bool", "complex64", "complex128",
    )
}
_DTYPES["bfloat16"] = np.dtype(ml_dtypes.bfloat16)

_SOURCE_NAME = "<pyref>"
SYNC_MARKER = b"\x00pyref:sync\x00"


def _send(msg):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - user code may have replaced it
            pass
    os.write(2, SYNC_MARKER)
    _proto_out.write(json.dumps(msg, separators=(",", ":")))
    _proto_out.write("\n")
    _proto_out.flush()


def _decode(name, enc):
    dtype = enc.get("dtype")
    shape = tuple(enc.get("shape") or ())
    if dtype == "string":
        items = enc.get("strings") or []
        flat = np.empty(len(items), dtype=object)
        for i, s in enumerate(items):
            flat[i] = base64.b64decode(s)
        return flat.reshape(shape)
    if dtype not in _DTYPES:
        raise ValueError(f"input {name!r}: unsupported dtype {dtype!r}")
    data = base64.b64decode(enc.get("data") or "")
    # copy() so that user code gets an ordinary writable array.
    return np.frombuffer(data, dtype=_DTYPES[dtype]).reshape(shape).copy()


def _element_bytes(name, x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    raise TypeError(
        f"output {name!r}: string array element of type "
        f"{type(x).__name__}, want bytes or str")


def _encode_strings(name, a):
    items = [
        base64.b64encode(_element_bytes(name, x)).decode("ascii")
        for x in a.reshape(-1).tolist()
    ]
    return {"dtype": "string", "shape": list(a.shape), "strings": items}


def _encode(name, value):
    if hasattr(value, "numpy"):
        value = value.numpy()
    if isinstance(value, (bytes, str)):
        return {
            "dtype": "string",
            "shape": [],
            "strings": [base64.b64encode(_element_bytes(name, value)).decode("ascii")],
        }
    a = np.asarray(value)
    if a.dtype.kind in "SU" and not isinstance(value, np.ndarray):
        # Lists of bytes: keep the original objects, because numpy's
        # fixed-width bytes dtype drops trailing NUL bytes.
        a = np.array(value, dtype=object)
    if a.dtype.kind in "SUO":
        return _encode_strings(name, a)
    dtype = a.dtype.name
    if dtype not in _DTYPES:
        raise TypeError(f"output {name!r}: unsupported dtype {a.dtype}")
    a = a.astype(_DTYPES[dtype], copy=False)  # tobytes() is row-major
    return {
        "dtype": dtype,
        "shape": list(a.shape),
        "data": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def _user_traceback(exc):
    # Drop the frames of this file; keep those of the user code and below.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _handle(line):
    req = json.loads(line)
    code = req["code"]
    inputs = {k: _decode(k, v) for k, v in (req.get("inputs") or {}).items()}
    # Make the user's source available to tracebacks.
    linecache.cache[_SOURCE_NAME] = (
        len(code), None, code.splitlines(True), _SOURCE_NAME)
    compiled = compile(code, _SOURCE_NAME, "exec")
    outputs = {}
    namespace = {
        "__name__": "__pyref__",
        "np": np,
        "tf": tf,
        "inputs": inputs,
        "outputs": outputs,
    }
    exec(compiled, namespace)
    # The code may fill outputs or rebind it (outputs = dict(inputs)).
    outputs = namespace.get("outputs")
    if not isinstance(outputs, dict):
        raise TypeError(
            f"outputs is a {type(outputs).__name__}, want a dict")
    encoded = {}
    for k, v in outputs.items():
        if not isinstance(k, str):
            raise TypeError(f"output name {k!r} is not a str")
        encoded[k] = _encode(k, v)
    return {"outputs": encoded}


def main():
    _send({"ready": True, "python": sys.version, "tensorflow": tf.__version__})
    while True:
        line = _proto_in.readline()
        if not line:
            return
        if not line.strip():
            continue
        try:
            resp = _handle(line)
        except BaseException as exc:  # noqa: B036 - report, keep serving
            resp = {"error": _user_traceback(exc)}
        _send(resp)


if __name__ == "__main__":
    main()
