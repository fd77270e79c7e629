"""pth: fixtures for the .pt/.pth reader (lib/io/fd_pth), written by torch.save.

Good files, in both containers (zip, legacy) and pickle protocols 2 and 4,
come with good.tsv: per file and flattened tensor name the dtype, shape and
SHA-256 of tensor.contiguous()'s bytes, and for floating tensors the SHA-256
of tensor.float()'s bytes (what fd_pth_to_f32 must give). Each good file is
loaded back with torch.load(weights_only=True) first, so the fixtures are
known-loadable. Hostile files come with hostile.tsv: file and a fragment the
error message must contain. Crafted files are built with Python's pickle and
zipfile around the real torch rebuild functions, never by hand-typed opcodes
except where an opcode itself is the point.
"""
import collections
import hashlib
import io
import os
import pickle
import sys
import zipfile

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(1234)


def sha(t):
    t = t.detach().contiguous().reshape(-1)
    return hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()


DT = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
      torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
      torch.uint8: "U8", torch.bool: "BOOL"}

rows = []


def flatten(obj, prefix=""):
    for k, v in obj.items():
        name = prefix + k
        if isinstance(v, dict):
            yield from flatten(v, name + ".")
        elif isinstance(v, torch.Tensor):
            yield name, v


def good(fname, obj, weights_only=True, **kw):
    path = os.path.join(out, fname)
    torch.save(obj, path, **kw)
    # torch 1.13's weights_only unpickler lacks protocol 4 and floats; these files are our own
    back = torch.load(path, map_location="cpu", weights_only=weights_only)
    assert back.keys() == obj.keys()
    for name, t in flatten(obj):
        fsha = sha(t.float()) if t.is_floating_point() else "-"
        shape = ",".join(str(s) for s in t.shape)
        rows.append((fname, name, DT[t.dtype], shape, sha(t), fsha))


# A small model's state dict: conv, batchnorm (with the int64 0-dim
# num_batches_tracked), linear; one training step so the stats are not trivial.
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                            torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 2))
model(torch.randn(2, 3, 7, 7)).sum().backward()
sd = model.state_dict()

# Every storage type, and the strided cases a state dict can hold.
base = torch.randn(6, 5)
extra = collections.OrderedDict()
extra["f64"] = torch.randn(3, 2, dtype=torch.float64)
extra["f16"] = torch.tensor([1.0, -2.5, 65504.0, 6e-8, 1e-5, float("inf"), 0.0, -0.0]).half()
extra["bf16"] = (torch.randn(5) * 1000).bfloat16()
extra["i64"] = torch.arange(-3, 4, dtype=torch.int64)
extra["i32"] = torch.tensor([-(2**31), 2**31 - 1, 7], dtype=torch.int32)
extra["i16"] = torch.tensor([-32768, 32767], dtype=torch.int16)
extra["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
extra["u8"] = torch.arange(0, 256, 37, dtype=torch.uint8)
extra["bool"] = torch.tensor([True, False, True])
extra["scalar"] = torch.tensor(3.5)
extra["empty"] = torch.zeros(0, 3)
extra["base"] = base
extra["transposed"] = base.t()                # strides (1, 5), same storage
extra["rows"] = base[1:4]                     # storage offset 5
extra["cols"] = base[:, 1:4:2]                # strides (5, 2)
extra["expanded"] = torch.arange(3.0).expand(4, 3)  # stride 0
extra["param"] = torch.nn.Parameter(torch.randn(2, 2))
extra["sixdim"] = torch.randn(1, 2, 1, 3, 1, 2).permute(5, 3, 1, 0, 2, 4)

full = collections.OrderedDict(list(sd.items()) + list(extra.items()))
good("zip.pth", full)
good("legacy.pth", full, _use_new_zipfile_serialization=False)
good("zip_p4.pth", full, False, pickle_protocol=4)
good("legacy_p4.pth", full, False, _use_new_zipfile_serialization=False, pickle_protocol=4)
# A training checkpoint: nested dicts flatten to "model.0.weight"; the other
# values are skipped (listed in fd_pth.skipped).
good("nested.pth", {"model": sd, "epoch": 3, "arch": "tiny", "best": 0.5, "note": None,
                    "hist": [1, 2], "opt": {"lr": 0.1, "state": {}}}, False)
good("small_zip.pth", {"w": torch.full((4,), 1234.5)})
good("small_legacy.pth", {"w": torch.full((4,), 1234.5)}, _use_new_zipfile_serialization=False)
good("empty_dict.pth", {})

with open(os.path.join(out, "good.tsv"), "w") as f:
    f.write("file\tname\tdtype\tshape\tsha256\tf32_sha256\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
with open(os.path.join(out, "skipped.tsv"), "w") as f:
    f.write("file\tname\n")
    for n in ["epoch", "arch", "best", "note", "hist", "opt.lr"]:
        f.write(f"nested.pth\t{n}\n")

# ---- hostile files -----------------------------------------------------------
hostile = []


def bad(fname, data, expect):
    with open(os.path.join(out, fname), "wb") as f:
        f.write(data)
    hostile.append((fname, expect))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def saved(obj, **kw):
    b = io.BytesIO()
    torch.save(obj, b, **kw)
    return b.getvalue()


bad("evil_zip.pth", saved({"x": Evil()}), "refusing pickle global 'posix.system'")
bad("evil_legacy.pth", saved({"x": Evil()}, _use_new_zipfile_serialization=False),
    "refusing pickle global 'posix.system'")
bad("evil_p4.pth", saved({"x": Evil()}, pickle_protocol=4), "refusing pickle global 'posix.system'")
bad("evil_builtin.pth", saved({"x": collections.Counter("ab")}),
    "refusing pickle global 'collections.Counter'")
bad("whole_module.pth", saved(torch.nn.Linear(2, 2)),
    "refusing pickle global 'torch.nn.modules.linear.Linear'")
jit = io.BytesIO()
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), jit)
bad("torchscript.pt", jit.getvalue(), "refusing pickle global '__torch__.torch.nn.modules.linear.Linear'")
bad("top_tensor.pth", saved(torch.zeros(3)), "top-level object is a tensor, not a state dict")


class FakeStorage:
    """Stands for a storage in a crafted pickle; persistent_id names it."""

    def __init__(self, key, numel, stype=torch.FloatStorage):
        self.key, self.numel, self.stype = key, numel, stype


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def craft_pickle(obj, protocol=2):
    b = io.BytesIO()
    p = pickle.Pickler(b, protocol=protocol)

    def pid(o):
        if isinstance(o, FakeStorage):
            return ("storage", o.stype, o.key, "cpu", o.numel)
        return None
    p.persistent_id = pid
    p.dump(obj)
    return b.getvalue()


def craft_zip(obj, storages, pkl=None, method=zipfile.ZIP_STORED):
    """storages: key -> bytes. pkl overrides data.pkl's bytes."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression=method) as z:
        z.writestr("archive/data.pkl", pkl if pkl is not None else craft_pickle(obj))
        for k, v in storages.items():
            z.writestr("archive/data/" + k, v)
        z.writestr("archive/version", "3\n")
    return b.getvalue()


four = torch.full((4,), 1234.5).numpy().tobytes()
s4 = FakeStorage("0", 4)
# Sanity: a crafted file of the same shape as the hostile ones loads in torch.
ok_crafted = craft_zip({"w": FakeTensor(s4, 0, (2, 2), (2, 1))}, {"0": four})
assert torch.load(io.BytesIO(ok_crafted), weights_only=True)["w"].sum().item() == 4 * 1234.5
with open(os.path.join(out, "crafted_ok.pth"), "wb") as f:
    f.write(ok_crafted)

bad("lie_numel.pth", craft_zip({"w": FakeTensor(FakeStorage("0", 8), 0, (4,), (1,))}, {"0": four}),
    "storage '0' holds 16 bytes, but 8 F32 elements were declared")
bad("view_oob.pth", craft_zip({"w": FakeTensor(s4, 0, (3,), (2,))}, {"0": four}),
    "tensor 'w' reaches element 4 of a storage of 4")
bad("offset_oob.pth", craft_zip({"w": FakeTensor(s4, 4, (1,), (1,))}, {"0": four}),
    "tensor 'w' reaches element 4 of a storage of 4")
bad("stride_overflow.pth",
    craft_zip({"w": FakeTensor(s4, 0, (3, 2), (2**62, 1))}, {"0": four}), "tensor 'w': view overflows")
bad("missing_storage.pth", craft_zip({"w": FakeTensor(FakeStorage("7", 4), 0, (4,), (1,))}, {"0": four}),
    "storage '7' missing from the archive")
bad("two_dtypes.pth",
    craft_zip({"a": FakeTensor(s4, 0, (4,), (1,)),
               "b": FakeTensor(FakeStorage("0", 4, torch.IntStorage), 0, (4,), (1,))}, {"0": four}),
    "storage '0' declared with two types or sizes")
bad("top_list.pth", craft_zip([FakeTensor(s4, 0, (4,), (1,))], {"0": four}),
    "top-level object is a list, not a state dict")
bad("list_of_tensors.pth", craft_zip({"w": [FakeTensor(s4, 0, (4,), (1,))]}, {"0": four}),
    "'w' is a list holding tensors")
bad("nine_dims.pth", craft_zip({"w": FakeTensor(s4, 0, (1,) * 9, (1,) * 9)}, {"0": four}),
    "tensor has 9 dimensions (at most 8)")
bad("int_key.pth", craft_zip({3: FakeTensor(s4, 0, (4,), (1,))}, {"0": four}),
    "top-level dict has type int, not str")
bad("text_pickle.pth", craft_zip(None, {}, pkl=b"(dp0\n."), "unsupported pickle opcode 0x70")
bad("memo_index.pth", craft_zip(None, {}, pkl=b"\x80\x02}r\xff\xff\xff\x7f."),
    "memo index 2147483647 out of range")
bad("no_stop.pth", craft_zip(None, {}, pkl=craft_pickle({})[:-1]), "data.pkl: truncated")
bad("compressed.pth", craft_zip({"w": FakeTensor(s4, 0, (4,), (1,))}, {"0": four},
                                method=zipfile.ZIP_DEFLATED), "is compressed")
bad("not_torch.zip", craft_zip(None, {}, pkl=b"").replace(b"archive/data.pkl", b"archive/data.pkk"),
    "has no <name>/data.pkl")

small_zip = saved({"w": torch.full((4,), 1234.5)})
i = small_zip.index(four)
bad("bad_crc.pth", small_zip[:i + 1] + bytes([small_zip[i + 1] ^ 0xff]) + small_zip[i + 2:],
    "fails its CRC-32 check")
bad("trunc_zip.pth", small_zip[:-30], "end-of-directory record not found")

small_legacy = saved({"w": torch.full((4,), 1234.5)}, _use_new_zipfile_serialization=False)
i = small_legacy.index(four)
assert small_legacy[i - 8:i] == (4).to_bytes(8, "little")
bad("legacy_count.pth", small_legacy[:i - 8] + (5).to_bytes(8, "little") + small_legacy[i:],
    "holds 5 elements, but 4 were declared")
bad("legacy_short.pth", small_legacy[:-1], "run past the end of the file")
bad("legacy_trailing.pth", small_legacy + b"junk", "4 unexpected bytes after the last storage")
j = small_legacy.index(b"little_endian")
k = small_legacy.index(b"\x88", j)
bad("legacy_bigendian.pth", small_legacy[:k] + b"\x89" + small_legacy[k + 1:], "big-endian")
bad("legacy_magic.pth", pickle.dumps(12345, protocol=2) + small_legacy[13:], "magic number missing")
bad("empty.pth", b"", "empty file")
bad("random.pth", bytes(range(7, 200)), "not a PyTorch file")

with open(os.path.join(out, "hostile.tsv"), "w") as f:
    f.write("file\texpect\n")
    for r in hostile:
        f.write("\t".join(r) + "\n")
