"""interop_check: fd checkpoints in torchvision (run by interop.t under
Debian's /usr/bin/python3). For every DIR/NAME.safetensors written by
t_model_export: build the torchvision model named by its fd.arch metadata with
fd.num_classes outputs (simplecnn: the SimpleCNN twin of tests/ref/models.py),
load_state_dict(strict=True), run DIR/NAME_io.safetensors's x through it in
eval mode and compare with fd's logits (|fd - torch| <= 1e-4 + 1e-4 |torch|:
both float32, batch 1, eval mode, so only summation order differs).
Prints one TAP-like line per model on stdout: "NAME<TAB>ok|fail<TAB>detail".
Exit 0 when every model passed, 1 otherwise.
Usage: /usr/bin/python3 interop_check.py DIR [NAME...]
"""
import ast
import glob
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

_NP = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "F16": np.float16, "U8": np.uint8}


def load_st(path):
    """A safetensors file as ({name: torch tensor}, metadata)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for k, h in header.items():
        a, b = h["data_offsets"]
        arr = np.frombuffer(buf[base + a:base + b], dtype=_NP[h["dtype"]]).reshape(h["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out, meta


def simplecnn_class():
    """SimpleCNN from tests/ref/models.py without running that script (its
    module level writes fixtures): one definition of the twin, taken by AST."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref", "models.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    body = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SimpleCNN"]
    ns = {"nn": nn, "torch": torch}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    return ns["SimpleCNN"]


def build(arch, num_classes):
    if arch == "simplecnn":
        return simplecnn_class()(num_classes=num_classes)
    return getattr(torchvision.models, arch)(num_classes=num_classes)


def check(d, name):
    sd, meta = load_st(os.path.join(d, name + ".safetensors"))
    io, _ = load_st(os.path.join(d, name + "_io.safetensors"))
    arch = meta.get("fd.arch")
    if arch != name:
        return False, "fd.arch is %r" % arch
    m = build(arch, int(meta["fd.num_classes"]))
    try:
        m.load_state_dict(sd, strict=True)
    except RuntimeError as ex:
        return False, "load_state_dict(strict=True): " + str(ex).replace("\n", " ")[:300]
    m.eval()
    with torch.no_grad():
        y = m(io["x"])
    r = io["logits"]
    if y.shape != r.shape:
        return False, "logits shape %s, fd %s" % (tuple(y.shape), tuple(r.shape))
    err = (y - r).abs()
    tol = 1e-4 + 1e-4 * y.abs()
    share = (err / tol).max().item()
    detail = "%d tensors strict, torch %s fd %s, %.3f of tol" % (
        len(sd), y.flatten().tolist(), r.flatten().tolist(), share)
    return share <= 1, detail


def main():
    d = sys.argv[1]
    names = sys.argv[2:] or sorted(os.path.basename(p)[:-len(".safetensors")]
                                   for p in glob.glob(os.path.join(d, "*.safetensors"))
                                   if not p.endswith("_io.safetensors"))
    torch.set_num_threads(2)
    good = True
    for n in names:
        try:
            passed, detail = check(d, n)
        except Exception as ex:  # a missing file, an unknown architecture
            passed, detail = False, "%s: %s" % (type(ex).__name__, ex)
        good &= passed
        print("%s\t%s\t%s" % (n, "ok" if passed else "fail", detail), flush=True)
    return 0 if good and names else 1


if __name__ == "__main__":
    sys.exit(main())
