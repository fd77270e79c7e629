"""st_interop: the Python side of tests/tools/safetensors.t, run by the venv's
python with the real `safetensors` package from PyPI (scripts/venv.sh).

  st_interop.py write DIR       write files with safetensors.numpy / .torch
                                save_file and DIR/NAME.expect listings
  st_interop.py check FD ORIG   FD (written by fd) must load in the package
                                with the same tensors and metadata as ORIG
"""
import hashlib
import json
import struct
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file as np_load, save_file as np_save
from safetensors.torch import load_file as pt_load, save_file as pt_save

META = {"fd.kind": "test", "text": "\"q\" é ünïcode", "empty": ""}
META_TAB = {"fd.kind": "test", "text": "a\tb"}


def np_tensors():
    rng = np.random.default_rng(7)
    t = {}
    for dt in ["float32", "float16", "float64", "uint8", "int8", "int16", "int32", "int64"]:
        a = rng.normal(size=(3, 5)) * 100
        t["t_" + dt] = a.astype(dt)
    t["t_bool"] = rng.normal(size=(2, 3, 4)) > 0
    t["scalar_f64"] = np.array(3.25)
    t["scalar_i32"] = np.array(-5, dtype=np.int32)
    t["empty_f32"] = np.zeros((0, 7), np.float32)
    t["empty_u8"] = np.zeros((4, 0, 2), np.uint8)
    t["odd_u8"] = np.arange(13, dtype=np.uint8)
    t["deep_i16"] = np.arange(2 * 1 * 3 * 1 * 2 * 1 * 2 * 1, dtype=np.int16).reshape(2, 1, 3, 1, 2, 1, 2, 1)
    return t


def pt_tensors():
    g = torch.Generator().manual_seed(3)
    t = {}
    for dt in [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.uint8, torch.int8,
               torch.int16, torch.int32, torch.int64, torch.bool]:
        a = torch.randn(4, 3, generator=g) * 50
        t["p_" + str(dt).split(".")[1]] = a > 0 if dt == torch.bool else a.to(dt)
    t["scalar_bf16"] = torch.tensor(1.5, dtype=torch.bfloat16)
    t["empty_i64"] = torch.zeros(0, dtype=torch.int64)
    return t


DT = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64", "uint8": "U8",
      "int8": "I8", "int16": "I16", "int32": "I32", "int64": "I64", "bool": "BOOL"}


def raw(a):
    """(dtype name, shape, little-endian bytes) of a numpy array or torch tensor."""
    if isinstance(a, torch.Tensor):
        name = str(a.dtype).split(".")[1]
        shape = list(a.shape)
        if a.dtype == torch.bfloat16:  # numpy has no bf16: its bits as int16
            a = a.view(torch.int16)
        a = a.contiguous().numpy()
    else:
        name, shape = str(a.dtype), list(a.shape)
    b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
    return DT[name], shape, b


def expect(path, tensors):
    with open(path, "w") as f:
        for n in sorted(tensors):
            dt, shape, b = raw(tensors[n])
            f.write("%s\t%s\t%s\t%d\t%s\n" % (n, dt, ",".join(map(str, shape)), len(b),
                                               hashlib.sha256(b).hexdigest()))


def write(d):
    t = np_tensors()
    np_save(t, d + "/np.safetensors", metadata=META)
    expect(d + "/np.expect", t)
    t = pt_tensors()
    pt_save(t, d + "/pt.safetensors", metadata=META_TAB)
    expect(d + "/pt.expect", t)


def check(ours, orig):
    with open(ours, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    assert (8 + n) % 64 == 0, "data starts at %d, not 64-byte aligned" % (8 + n)
    with safe_open(ours, "pt") as f:
        meta = f.metadata()
    with safe_open(orig, "pt") as f:
        want = f.metadata()
    assert meta == want, (meta, want)
    a, b = pt_load(ours), pt_load(orig)
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert raw(a[k])[2] == raw(b[k])[2], k
    if "bfloat16" not in {str(v.dtype).split(".")[1] for v in a.values()}:
        c = np_load(ours)
        for k in c:
            assert c[k].tobytes() == raw(b[k])[2], k
    for k, v in hdr.items():
        if k != "__metadata__":
            size = np.dtype({"F64": "f8", "I64": "i8", "F32": "f4", "I32": "i4", "F16": "f2",
                             "BF16": "i2", "I16": "i2"}.get(v["dtype"], "u1")).itemsize
            assert v["data_offsets"][0] % size == 0, "%s not aligned to %d" % (k, size)
    print("ok: %d tensors, %d metadata" % (len(a), len(meta)))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])
