"""stio: write safetensors fixture files from reference scripts.

Reference scripts (PyTorch, PIL, scikit-learn) hand their results to the C
tests as safetensors. Debian 12 has no python3-safetensors, and torch 1.13 has
no writer, so this is a minimal writer of the published format: 8-byte
little-endian header length, JSON header, raw little-endian data, header padded
with spaces to a multiple of 64 bytes.
"""
import json
import struct

import numpy as np

_DT = {
    np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("float16"): "F16",
    np.dtype("uint8"): "U8", np.dtype("int8"): "I8", np.dtype("int16"): "I16",
    np.dtype("int32"): "I32", np.dtype("int64"): "I64", np.dtype("bool"): "BOOL",
}


def save(path, tensors, metadata=None):
    """tensors: name -> numpy array (or torch tensor); metadata: str -> str."""
    header, blobs, off = {}, [], 0
    arrays = {}
    for name, a in tensors.items():
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        arrays[name] = np.asarray(a)
    # Largest element size first: with the data area 64-byte aligned every
    # tensor then starts aligned to its own element size, so C code can read
    # a double in place (UBSan checks it).
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    for name in order:
        a = arrays[name]
        a = np.array(a, order="C", copy=False)  # ascontiguousarray would make 0-d arrays 1-d
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DT[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-(8 + len(h))) % 64)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
