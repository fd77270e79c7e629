#!/bin/bash
# train.t: fd-train on a tiny fd-synth pack (simplecnn, 32 px, 1 compute
# thread): determinism, bit-identical resume (after a clean stop, mid-epoch,
# SIGTERM and kill -9), test rows never read, validation unaugmented, NaN
# stop, argument and config errors without a run directory.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
fd-synth -q -o D --groups 40 --fake-size 48 --real-width 48,64 --seed 3 &&
	fd-index -q --root D -o idx.tsv && fd-split -q --folds 3 --test 0.2 -o split.tsv idx.tsv &&
	fd-pack -q --root D --size 32 -o pack.safetensors split.tsv || { echo "Bail out! cannot make the pack"; exit 1; }
cat >cfg.json <<'J'
{"model": "simplecnn", "epochs": 3, "batch_size": 16, "num_workers": 2,
 "optimizer": {"lr": 0.001}, "scheduler": {"type": "cosine_annealing", "T_max": 3}}
J
C="--pack pack.safetensors --fold 0 --config $top/configs/shared.json --config cfg.json --threads 1"
cols() { cut -f1-7 "$1"; } # every column but seconds and images_per_s

ok "train 3 epochs" fd-train -q $C -o A
for f in config.json log.tsv best.safetensors last.safetensors state.safetensors run.json; do
	ok "A/$f written" test -s "A/$f"
done
is "log.tsv header" "$(head -1 A/log.tsv)" "$(printf 'epoch\ttrain_loss\ttrain_auc\tval_loss\tval_auc\tval_acc\tlr\tseconds\timages_per_s')"
is "log.tsv has 3 epochs" "$(tail -n +2 A/log.tsv | cut -f1 | tr '\n' ,)" "1,2,3,"
is "lr follows torch's CosineAnnealingLR(T_max 3) exactly" "$($PY -c '
import torch
p = [torch.nn.Parameter(torch.zeros(1))]; o = torch.optim.AdamW(p, lr=1e-3)
s = torch.optim.lr_scheduler.CosineAnnealingLR(o, 3)
want = []
for _ in range(3): want.append(o.param_groups[0]["lr"]); o.step(); s.step()
got = [float(l.split("\t")[6]) for l in open("A/log.tsv").read().splitlines()[1:]]
print("ok" if got == want else "%r vs %r" % (got, want))' 2>&1)" ok
meta=$(fd-st --meta A/best.safetensors)
for k in fd.arch fd.num_classes fd.norm_mean fd.norm_std fd.input_size fd.config fd.epoch; do
	like "checkpoint metadata $k" "$meta" "^$k	"
done
like "run.json names the pack hash" "$(cat A/run.json)" '"pack_tsv_sha256": "[0-9a-f]{64}"'
like "run.json names the threads" "$(cat A/run.json)" '"threads": 1[,}]'
like "run.json holds the config" "$(cat A/run.json)" '"config": \{'
# run.json "machine": the CPU, oneDNN's version and the ISA its kernels ran
# (doc/train.md); with winograd the share of multiply-adds Winograd ran,
# above zero on every CPU (oneDNN's Winograd or fd's own: doc/nn-kernels.md
# "Winograd")
# the oneDNN header: the one beside the library fd-train loads (ONEDNN=3:
# .deps/onednn-3.2.0/{lib,include}), else Debian's
machine() { # RUNDIR WANT_WINO(0|1)
	$PY - "$1/run.json" "$2" "$(ldd "$(command -v fd-train)" | awk '/libdnnl/ {print $3}')" <<'PY'
import json, os, re, sys
m = json.load(open(sys.argv[1]))["machine"]
info = open("/proc/cpuinfo").read()
cpu = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown")
lib = os.path.realpath(sys.argv[3])
inc = os.path.join(os.path.dirname(os.path.dirname(lib)), "include/oneapi/dnnl/dnnl_version.h")
hdr = open(inc if os.path.exists(inc) else "/usr/include/oneapi/dnnl/dnnl_version.h").read()
ver = ".".join(re.search(r"#define DNNL_VERSION_%s (\d+)" % k, hdr).group(1) for k in ("MAJOR", "MINOR", "PATCH"))
avx512 = "avx512f" in info.split()
bad = []
if m["cpu"] != cpu: bad.append("cpu %r, /proc/cpuinfo %r" % (m["cpu"], cpu))
if m["cpus_online"] != os.cpu_count(): bad.append("cpus_online %r" % m["cpus_online"])
if m["onednn"] != ver: bad.append("onednn %r, header %s" % (m["onednn"], ver))
if not m["onednn_isa"].startswith("avx512_core" if avx512 else "avx2"): bad.append("isa %r" % m["onednn_isa"])
w = m["winograd_share"]
if not (0 < w <= 1 if sys.argv[2] == "1" else w == 0): bad.append("winograd_share %r" % w)
print("; ".join(bad) or "ok")
PY
}
is "run.json: machine (cpu, oneDNN version, ISA; no Winograd)" "$(machine A 0)" ok

ok "train again" fd-train -q $C -o B
is "same seed and threads: identical log (but timing)" "$(cols B/log.tsv)" "$(cols A/log.tsv)"

ok "train 1 epoch" fd-train -q $C --set epochs=1 -o R1
ok "R1 complete after 1 epoch" test -s R1/run.json
ok "resume to 3 epochs" fd-train -q $C --resume -o R1
is "1 epoch + resume to 3 = uninterrupted" "$(cols R1/log.tsv)" "$(cols A/log.tsv)"
ok "stop mid-epoch 2 (--stop-after 8)" fd-train -q $C --stop-after 8 -o R2
no_file "no run.json after a stop" R2/run.json
ok "resume mid-epoch" fd-train -q $C --resume -o R2
is "mid-epoch resume = uninterrupted" "$(cols R2/log.tsv)" "$(cols A/log.tsv)"
fails "resume with another config" 1 "another config" fd-train -q $C --resume --set optimizer.lr=0.01 -o R2
fails "a run dir is not overwritten" 1 "holds a run already" fd-train -q $C -o A

# SIGTERM after the first epoch: state saved, exit 143, resume equals A
sigrun() { # signal dir
	fd-train -q $C -o "$2" & local pid=$! i=0
	while [ ! -e "$2/log.tsv" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
	kill -"$1" $pid; wait $pid; echo $?
}
is "SIGTERM: exit 143" "$(sigrun TERM S)" 143
no_file "SIGTERM: no run.json" S/run.json
ok "SIGTERM: state saved" test -s S/state.safetensors
ok "resume after SIGTERM" fd-train -q $C --resume -o S
is "SIGTERM + resume = uninterrupted" "$(cols S/log.tsv)" "$(cols A/log.tsv)"
is "kill -9: killed" "$(sigrun KILL K9)" 137
ok "resume after kill -9" fd-train -q $C --resume -o K9
is "kill -9 + resume = uninterrupted" "$(cols K9/log.tsv)" "$(cols A/log.tsv)"

# test rows are never read: garbage images and flipped labels there change nothing
$PY - "$top/tests/ref" <<'PY'
import json, struct, sys, numpy as np
sys.path.insert(0, sys.argv[1]); import stio
b = open("pack.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); meta = h.pop("__metadata__")
d = {k: np.frombuffer(b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]], np.uint8).reshape(v["shape"]).copy()
     for k, v in h.items()}
rows = [l.rstrip("\n").split("\t") for l in open("pack.tsv")]
fi = rows[0].index("fold")
test = np.array([r[fi] == "test" for r in rows[1:]])
d["images"][test] = np.random.default_rng(0).integers(0, 256, d["images"][test].shape, dtype=np.uint8)
d["label"][test] = 1 - d["label"][test]
stio.save("poison.safetensors", d, meta)
# the sidecar's labels flipped too: fd_pack_open refuses a sidecar that disagrees
li = rows[0].index("label")
with open("poison.tsv", "w") as f:
    for i, r in enumerate(rows):
        if i and test[i - 1]:
            r[li] = str(1 - int(r[li]))
        f.write("\t".join(r) + "\n")
PY
ok "train on a pack with poisoned test rows" fd-train -q ${C/pack.safetensors/poison.safetensors} -o P
is "test rows change nothing" "$(cols P/log.tsv)" "$(cols A/log.tsv)"

# validation is never augmented: the log's val_loss equals fd-eval's
# (unaugmented) scoring of the same checkpoint on fold 0
ok "train 1 epoch with augment.json" fd-train -q $C --config "$top/configs/augment.json" --set epochs=1 -o G
ok "score fold 0 with its checkpoint" fd-eval -q --threads 1 --model G/last.safetensors --pack pack.safetensors --only fold=0 -o G/preds.tsv
is "val_loss = BCE of the unaugmented scores" "$($PY -c '
import csv, math
r = list(csv.DictReader(open("G/preds.tsv"), delimiter="\t"))
l = sum(max(float(x["logit"]), 0) - float(x["logit"]) * int(x["label"]) + math.log1p(math.exp(-abs(float(x["logit"])))) for x in r) / len(r)
v = float(list(csv.DictReader(open("G/log.tsv"), delimiter="\t"))[0]["val_loss"])
print("ok" if abs(l - v) <= 1e-6 * max(1, abs(v)) else "%r vs %r" % (l, v))')" ok

fails "NaN loss stops the run" 1 "epoch 1 step [0-9]+: loss is (nan|inf)" fd-train -q $C --set optimizer.lr=1e30 -o N
no_file "no run.json after NaN" N/run.json

printf '{\n  "modle": "simplecnn"\n}\n' >bad.json
fails "unknown config key: file and line" 1 "bad.json: line 2: unknown key 'modle'" fd-train -q $C --config bad.json -o E1
no_file "no run dir after a bad config" E1
fails "missing pack" 1 "cannot read 'nothere.safetensors'" fd-train -q ${C/pack.safetensors/nothere.safetensors} -o E2
no_file "no run dir for a missing pack" E2
fails "fold without rows" 1 "fold 7|no row" fd-train -q ${C/--fold 0/--fold 7} -o E3
no_file "no run dir for a bad fold" E3
fails "--fold abc" 2 "--fold" fd-train -q ${C/--fold 0/--fold abc} -o E4
fails "missing -o" 2 "-o RUNDIR is required" fd-train -q $C
fails "unknown model" 1 "unknown model 'vgg'" fd-train -q $C --set model=vgg -o E5
no_file "no run dir for an unknown model" E5
# --device: cpu is the CPU run; cuda is refused before any output (no backend,
# or, in a CUDA build, no usable device; only device 0 is used)
ok "--device cpu" fd-train -q $C --set epochs=1 --device cpu -o DC
ok "--device cpu: run.json" test -s DC/run.json
fails "--device cuda: refused" 1 "--device cuda: (this build of fd has no cuda backend|cuda: cudaGetDeviceCount: )" fd-train -q $C --device cuda -o G1
no_file "--device cuda: no run dir" G1
fails "--device cuda:1: refused" 1 "--device cuda:1: (.*no cuda backend|only device 0 is used)" fd-train -q $C --device=cuda:1 -o G2
no_file "--device cuda:1: no run dir" G2
fails "--device gpu: usage" 2 "--device: 'gpu' is not a device" fd-train -q $C --device gpu -o G3
fails "--device cuda:x: usage" 2 "expected cuda:N" fd-train -q $C --device cuda:x -o G4
no_file "no run dir for a bad device" G3
like "--list-models" "$(fd-train --list-models)" "simplecnn	389153	"
# precision bf16 (doc/train.md): trains where the CPU has AVX512-BF16, close
# to fp32 (train loss of epoch 1 within 2% of R1's: bf16 rounds operands at
# 2^-8, it does not change what is learnt in one epoch); refused before any
# output where oneDNN may not use it (ONEDNN_MAX_CPU_ISA below it) or the CPU
# lacks it
if grep -qw avx512_bf16 /proc/cpuinfo; then
	ok "precision bf16: 1 epoch" fd-train -q $C --set epochs=1 --set precision=bf16 -o BF
	like "bf16: the config in run.json says bf16" "$(cat BF/run.json)" '"precision": "bf16"'
	ok "bf16: epoch 1 train loss within 2% of fp32's" $PY -c "import sys
a, b = (float(open(f).read().splitlines()[1].split()[1]) for f in ('BF/log.tsv', 'R1/log.tsv'))
print('# bf16 %r fp32 %r' % (a, b)); sys.exit(not (abs(a - b) <= 0.02 * abs(b) and a != b))"
	fails "bf16 with oneDNN limited to AVX512_CORE: refused" 1 "config 'precision': precision bf16: oneDNN's CPU ISA is limited below avx512_core_bf16" \
		env ONEDNN_MAX_CPU_ISA=AVX512_CORE fd-train -q $C --set precision=bf16 -o BF2
else
	fails "bf16 without AVX512-BF16: refused" 1 "config 'precision': precision bf16: this CPU lacks AVX" \
		fd-train -q $C --set precision=bf16 -o BF2
fi
no_file "bf16 refused: no run dir" BF2
# winograd (doc/nn-kernels.md "Winograd"): the 3x3 convolutions round
# differently where the CPU has AVX-512; the epoch's train loss within 0.5%
# of R1's and not equal (elsewhere: equal, the direct algorithm)
ok "winograd: 1 epoch" fd-train -q $C --set epochs=1 --set winograd=true -o WG
like "winograd: the config in run.json says so" "$(cat WG/run.json)" '"winograd": true'
is "winograd: run.json's share above 0" "$(machine WG 1)" ok
WD='a != b and abs(a - b) <= 0.005 * abs(b)'
ok "winograd: epoch 1 train loss ($WD)" $PY -c "import sys
a, b = (float(open(f).read().splitlines()[1].split()[1]) for f in ('WG/log.tsv', 'R1/log.tsv'))
print('# winograd %r direct %r' % (a, b)); sys.exit(not ($WD))"
fails "winograd: not a boolean" 1 "winograd" fd-train -q $C --set winograd=3 -o WG2
no_file "winograd refused: no run dir" WG2
done_testing
