#!/usr/bin/python3
"""Fashion-MNIST (Debian's dataset-fashion-mnist) for fd: `pack` converts it
into an fd pack (10 classes, 28x28 gray -> RGB, fold 0 = a fixed 10% validation
split of the official training set, fold 1 = the rest, `test` = the official
test set); `torch` trains the simplecnn twin with the same recipe fd-train
uses and prints its test accuracy.
  fashion_mnist.py pack OUT.safetensors [--train N] [--test N]
  fashion_mnist.py torch PACK.safetensors --epochs E --batch B --lr LR --threads T [--seed S]
"""
import argparse, gzip, json, os, struct, sys, time
import numpy as np

SRC = "/usr/share/datasets/fashion-mnist"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def idx(name):
    b = gzip.open(os.path.join(SRC, name)).read()
    magic, n = struct.unpack(">II", b[:8])
    if magic == 2051:
        r, c = struct.unpack(">II", b[8:16])
        return np.frombuffer(b, np.uint8, offset=16).reshape(n, r, c)
    return np.frombuffer(b, np.uint8, offset=8)


def pack(a):
    import stio
    xi, yi = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    xt, yt = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)  # fixed split: the same for every run
    perm = rng.permutation(len(xi))
    val = np.zeros(len(xi), bool)
    val[perm[: len(xi) // 10]] = True
    keep = np.arange(len(xi)) if a.train is None else np.sort(rng.permutation(len(xi))[: a.train])
    tkeep = np.arange(len(xt)) if a.test is None else np.arange(a.test)
    imgs = np.concatenate([xi[keep], xt[tkeep]])
    labels = np.concatenate([yi[keep], yt[tkeep]]).astype(np.uint8)
    folds = ["0" if val[i] else "1" for i in keep] + ["test"] * len(tkeep)
    paths = ["train/%05d" % i for i in keep] + ["test/%05d" % i for i in tkeep]
    rgb = np.repeat(imgs[..., None], 3, axis=3)
    base = a.out[: -len(".safetensors")]
    with open(base + ".tsv", "w") as f:
        f.write("path\tsource\tlabel\tgroup\tstatus\tfold\trow\n")
        for r, (p, l, fo) in enumerate(zip(paths, labels, folds)):
            f.write("%s\tfmnist%d\t%d\t%s\tok\t%s\t%d\n" % (p, l, l, p, fo, r))
    stio.save(a.out, {"images": rgb, "label": labels},
              {"fd.kind": "pack", "fd.size": "28", "fd.geometry": "resize", "fd.source": "fashion-mnist"})
    print("%s: %d train, %d val, %d test" % (a.out, int((np.array(folds) == "1").sum()),
                                             int((np.array(folds) == "0").sum()), len(tkeep)))


def torch_run(a):
    import torch
    from twins import SimpleCNN

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    b = open(a.pack, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    get = lambda k: np.frombuffer(b[8 + n + h[k]["data_offsets"][0]: 8 + n + h[k]["data_offsets"][1]],
                                  np.uint8).reshape(h[k]["shape"])
    x, y = get("images"), get("label").astype(np.int64)
    folds = [l.rstrip("\n").split("\t")[5] for l in open(a.pack[:-12] + ".tsv")][1:]
    folds = np.array(folds)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    prep = lambda s: (torch.from_numpy(x[s]).permute(0, 3, 1, 2).float() / 255 - mean) / std
    tr = np.where((folds != "0") & (folds != "test"))[0]
    te = np.where(folds == "test")[0]
    m = SimpleCNN(num_classes=10)
    opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=a.wd)
    sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    t0 = time.time()
    for ep in range(a.epochs):
        m.train()
        perm = tr[torch.randperm(len(tr)).numpy()]
        for i in range(0, len(perm), a.batch):
            s = perm[i:i + a.batch]
            if len(s) == 1:
                continue
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(prep(s)), torch.from_numpy(y[s]))
            loss.backward()
            opt.step()
        sch.step()
    ttrain = time.time() - t0
    m.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(te), 256):
            s = te[i:i + 256]
            correct += int((m(prep(s)).argmax(1).numpy() == y[s]).sum())
    print("torch: test accuracy %.4f (%d/%d), training %.1f s" % (correct / len(te), correct, len(te), ttrain))


p = argparse.ArgumentParser()
sp = p.add_subparsers(dest="cmd", required=True)
q = sp.add_parser("pack"); q.add_argument("out"); q.add_argument("--train", type=int); q.add_argument("--test", type=int)
q = sp.add_parser("torch"); q.add_argument("pack")
for k, t, d in [("epochs", int, 1), ("batch", int, 64), ("lr", float, 1e-3), ("wd", float, 1e-4),
                ("threads", int, 2), ("seed", int, 42)]:
    q.add_argument("--" + k, type=t, default=d)
a = p.parse_args()
pack(a) if a.cmd == "pack" else torch_run(a)
