"""config: fixtures for t_config. Two config files, --set overrides, and the
resolved config as Python's json.dumps(sort_keys=True) writes it after a plain
recursive dict merge; plus random doubles whose canonical text is Python's repr."""
import json
import os
import sys

import numpy as np

out = sys.argv[1]
shared = {
    "seed": 42, "test_ratio": 0.1, "batch_size": 32,
    "optimizer": {"type": "adamw", "lr": 3e-4, "weight_decay": 0.05, "betas": [0.9, 0.999]},
    "scheduler": {"type": "cosine_annealing", "T_max": 30},
    "early_stopping_patience": 5, "num_workers": 4,
    "augment": {"hflip": {"p": 0.5}, "jpeg": {"p": 0.2, "quality": [30, 95]}},
    "exclude_sources": ["insight"], "model": "resnet18", "init": None,
}
exp = {
    "optimizer": {"lr": 1e-3, "nesterov": False},
    "augment": {"hflip": {"p": 0.0}, "rotation": {"p": 0.3, "degrees": 10}},
    "exclude_sources": [], "epochs": 12, "normalize": "real-train", "precision": "bf16",
    "init": "w/\u00e9t\u00e9\t\"x\".pth",
}
sets = ["optimizer.lr=1e-5", "model=efficientnet_b0", "augment.jpeg={\"p\":1}", "threads=2",
        "scheduler.eta_min=100", "optimizer.betas=[0.5,0.75]"]


def merge(a, b):
    for k, v in b.items():
        if isinstance(a.get(k), dict) and isinstance(v, dict):
            merge(a[k], v)
        else:
            a[k] = v


cfg = json.loads(json.dumps(shared))
merge(cfg, exp)
for s in sets:
    k, v = s.split("=", 1)
    try:
        v = json.loads(v)
    except ValueError:
        pass
    d = {}
    cur = d
    parts = k.split(".")
    for p in parts[:-1]:
        cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = v
    merge(cfg, d)

with open(os.path.join(out, "shared.json"), "w") as f:
    json.dump(shared, f, indent=2)
with open(os.path.join(out, "exp.json"), "w") as f:
    json.dump(exp, f, indent=4, ensure_ascii=False)
with open(os.path.join(out, "sets.txt"), "w") as f:
    f.write("\n".join(sets) + "\n")
with open(os.path.join(out, "expected.json"), "w") as f:
    f.write(json.dumps(cfg, sort_keys=True, ensure_ascii=False, separators=(",", ":")))

rng = np.random.default_rng(5)
vals = [0.1, 3e-4, 1e-5, 100.0, 1e16, 1e15, 1.5e-7, 123456.789, 0.0001, 0.00001, -0.0, 5e-324,
        1.7976931348623157e308, 2.5, 1.0 / 3, 1e22, 12345678901234567.0]
vals += list(rng.standard_normal(100) * 10.0 ** rng.integers(-12, 20, 100))
vals += list(rng.integers(0, 1 << 53, 30) * 2.0 ** rng.integers(-60, 10, 30))
with open(os.path.join(out, "reals.txt"), "w") as f:
    for v in vals:
        v = float(v)
        f.write(json.dumps({"optimizer": {"lr": v}}) + "\t" +
                json.dumps({"optimizer": {"lr": v}}, separators=(",", ":")) + "\n")
