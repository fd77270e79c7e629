#!/bin/sh
# device-check.sh: on a GPU machine (CUDA toolkit with nvcc, cuDNN 9, an
# NVIDIA driver) that lacks the Debian -dev packages fd builds against and has
# no package registry: unpack the packages carried in .devdeps/ into a private
# prefix (build-dev/devroot), build fd with the CUDA backend into build-dev/,
# run the GPU checks (t_cuda: every op-table entry and every registry model on
# CUDA against the CPU; t_model_cond: the model tolerance checked on the CPU;
# fd-train/fd-eval --device cuda against --device cpu on a small synthetic
# pack, and a second CUDA training bit for bit equal to the first) and write
# one results file; a check that skips (no usable GPU) fails here.
# Exit 0 when everything built and passed, 1 otherwise, 2 on usage.
# doc/cuda.md says how .devdeps/ is made.
#   usage: scripts/device-check.sh RESULTS-FILE
set -u
prog=device-check
if [ $# -ne 1 ] || [ "$1" = "--help" ]; then
	echo "usage: scripts/device-check.sh RESULTS-FILE" >&2
	exit 2
fi
out=$1
# the whole script stays inside DEVICE_CHECK_BUDGET seconds (default 420):
# each step's timeout is cut to what is left, a step with < 10 s left is
# skipped (said in the results, status FAIL), so the results file is always
# written before a caller's limit
start=$(date +%s)
budget=${DEVICE_CHECK_BUDGET:-420}
# tmo SECONDS: that, or the seconds left if fewer; empty when < 10 are left
tmo() {
	l=$((start + budget - $(date +%s)))
	[ "$l" -ge 10 ] || return 1
	[ "$l" -lt "$1" ] && echo "$l" || echo "$1"
}
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cd "$root" || exit 1
deps="$root/.devdeps"
B=build-dev
prefix="$root/$B/devroot" # the unpacked packages (.devdeps/ keeps only the .deb files)
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT INT TERM
: >"$tmp" || { echo "$prog: cannot write '$tmp'" >&2; exit 1; }
say() { echo "$*" >>"$tmp"; echo "$prog: $*" >&2; }
finish() { # status: write the results file atomically, exit
	echo "total: $(($(date +%s) - start)) s of a $budget s budget" >>"$tmp"
	echo "status: $([ "$1" -eq 0 ] && echo PASS || echo FAIL)" >>"$tmp"
	mv -f "$tmp" "$out" || { echo "$prog: cannot write '$out'" >&2; exit 1; }
	trap - EXIT INT TERM
	echo "$prog: results in '$out'" >&2
	exit "$1"
}

echo "# fd device check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >>"$tmp"
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L >>"$tmp" 2>&1; else say "nvidia-smi: not on PATH"; fi
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
multi=x86_64-linux-gnu
[ "$arch" = amd64 ] || { say "this prefix holds amd64 packages, the machine is $arch"; finish 1; }

# --- the carried Debian 12 packages -------------------------------------
ls "$deps"/*.deb >/dev/null 2>&1 || { say "no .deb files in '$deps' (carry .devdeps/ with the tree)"; finish 1; }
rm -rf "$prefix" && mkdir -p "$prefix" || finish 1
# whether the machine's loader finds $1 without our prefix
have_lib() {
	{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q "[[:space:]]$1 " && return 0
	[ -e "/lib/$multi/$1" ] || [ -e "/usr/lib/$multi/$1" ]
}
for deb in "$deps"/*.deb; do
	name=$(basename "$deb")
	# the machine's own runtime wins where it has one (a newer gcc's libgomp)
	case $name in
	libgomp1_*) have_lib libgomp.so.1 && continue ;;
	ocl-icd-libopencl1_*) have_lib libOpenCL.so.1 && continue ;;
	esac
	if command -v dpkg >/dev/null 2>&1; then
		dpkg -x "$deb" "$prefix" || { say "dpkg -x '$name' failed"; finish 1; }
	else
		member=$(ar t "$deb" | grep '^data\.tar') || { say "'$name': no data member"; finish 1; }
		case $member in
		*.xz) ar p "$deb" "$member" | tar -xJ -C "$prefix" ;;
		*.zst) ar p "$deb" "$member" | zstd -dc | tar -x -C "$prefix" ;;
		*) ar p "$deb" "$member" | tar -xz -C "$prefix" ;;
		esac || { say "cannot unpack '$name'"; finish 1; }
	fi
done
lib="$prefix/usr/lib/$multi"
# development links that point at Debian's absolute paths (libz.so): to the
# machine's own runtime library
for l in "$lib"/*.so; do
	[ -e "$l" ] && continue
	soname=$(basename "$(readlink "$l")" | sed 's/\(\.so\.[0-9]*\).*/\1/')
	for d in /lib/$multi /usr/lib/$multi /lib64 /usr/lib64; do
		if [ -e "$d/$soname" ]; then ln -sf "$d/$soname" "$l"; break; fi
	done
	[ -e "$l" ] || { say "$(basename "$l"): no $soname on this machine"; finish 1; }
done

# --- CUDA, cuBLAS, cuDNN ---------------------------------------------------
nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null) || { say "no nvcc (PATH, /usr/local/cuda/bin)"; finish 1; }
cuda_home=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
# PyTorch's CUDA wheels (site-packages/nvidia/...) hold cuDNN where the toolkit has none
pydir=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null || echo /nonexistent)
links="$prefix/cuda-links"
mkdir -p "$links"
# first directory holding $1
find_in() {
	f=$1; shift
	for d in "$@"; do [ -e "$d/$f" ] && { echo "$d"; return 0; }; done
	return 1
}
cudnn_inc=$(find_in cudnn.h "$cuda_home/include" /usr/include /usr/include/$multi "$pydir/cudnn/include" ||
	dirname "$(find "$pydir" -name cudnn.h 2>/dev/null | head -1)") && [ -e "$cudnn_inc/cudnn.h" ] ||
	{ say "cudnn.h not found (CUDA include, /usr/include, python's nvidia/ wheels)"; finish 1; }
# a library reachable as lib$1.so: the toolkit's or the python wheels' (.so.N only: linked here)
find_lib() {
	d=$(find_in "lib$1.so" "$cuda_home/lib64" "$cuda_home/lib" /usr/lib/$multi "$pydir/$2/lib") && { echo "$d"; return 0; }
	so=$(ls "$cuda_home/lib64/lib$1.so."[0-9]* /usr/lib/$multi/lib$1.so.[0-9]* 2>/dev/null | head -1)
	[ -n "$so" ] || so=$(find "$pydir" -name "lib$1.so.[0-9]*" 2>/dev/null | sort | head -1)
	[ -n "$so" ] || return 1
	ln -sf "$so" "$links/lib$1.so"
	dirname "$so"
}
libpath="$lib"
for l in cudnn:cudnn cublas:cublas cublasLt:cublas cudart:cuda_runtime; do
	d=$(find_lib "${l%%:*}" "${l#*:}") || { say "lib${l%%:*}.so not found"; finish 1; }
	case ":$libpath:" in *":$d:"*) ;; *) libpath="$libpath:$d" ;; esac
done
libpath="$libpath:$links"
export CPATH="$prefix/usr/include:$cudnn_inc${CPATH:+:$CPATH}"
export LIBRARY_PATH="$libpath${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
	echo "nvcc: $nvcc ($("$nvcc" --version | tail -1))"
	echo "cudnn.h: $cudnn_inc ($(grep -h '#define CUDNN_M[AI][JN]OR ' "$cudnn_inc/cudnn_version.h" 2>/dev/null | awk '{print $3}' | paste -sd. -))"
	echo "library path: $libpath"
} >>"$tmp"

# --- build -------------------------------------------------------------------
jobs=$(nproc 2>/dev/null || echo 4)
mkdir -p "$B" || finish 1
say "building into $B with $jobs jobs (log: $B/build.log)"
# warnings stay warnings here: this machine's compilers may be newer than the
# ones the tree is kept warning-free with, and a warning must not cost the run
if ! make -j"$jobs" B="$B" CUDA=1 NVCC="$nvcc" NVCCFLAGS="-O2 -I$prefix/usr/include -I$cudnn_inc" \
	WARN="-Wall -Wextra -Wno-unused-parameter" NVCC_WARN="-Xcompiler -Wall,-Wextra,-Wno-unused-parameter" \
	LDFLAGS="-L$links -Wl,-rpath,$lib" tools units "$B/bench/gpu" >"$B/build.log" 2>&1; then
	say "build FAILED; the end of its log ($B/build.log):"
	tail -40 "$B/build.log" >>"$tmp"
	finish 1
fi
say "build ok"

# --- checks ------------------------------------------------------------------
status=0
linebuf=$(command -v stdbuf >/dev/null 2>&1 && echo "stdbuf -oL -eL")
# t_cuda: every op-table entry, then every registry model, CPU vs CUDA;
# t_model_cond (CPU only): the model comparison's tolerance is right
CHECKS="t_cuda t_model_cond"
for t in $CHECKS; do
	echo "## $t" >>"$tmp"
	t0=$(date +%s)
	if s=$(tmo 240); then
		# line-buffered: a crash keeps every line printed before it
		OMP_WAIT_POLICY=PASSIVE FD_BUILD=$B timeout "$s" $linebuf "$B/tests/$t" >"$B/$t.tap" 2>&1
		rc=$?
	else
		echo "not ok - $t: skipped, the time budget ($budget s) is spent" >"$B/$t.tap"
		rc=1
	fi
	cat "$B/$t.tap" >>"$tmp"
	if [ $rc -ne 0 ]; then
		status=1
		say "$t FAILED (exit $rc)"
	elif [ "$t" = t_cuda ] && grep -q '^1\.\.0 # SKIP' "$B/$t.tap"; then
		# this script is for a machine with a GPU: a skip means it is not usable
		status=1
		say "$t skipped: $(sed -n 's/^1\.\.0 # SKIP //p' "$B/$t.tap")"
	else
		say "$t passed ($(grep -c '^ok' "$B/$t.tap") checks, $(($(date +%s) - t0)) s)"
	fi
	grep '^not ok' "$B/$t.tap" | head -20 | sed 's/^/FAILED: /' >>"$tmp"
done

# --- fd-train / fd-eval / fd-gradcam: --device cpu vs --device cuda -------------
# A small synthetic pack at 32 px, simplecnn for 3 epochs on each device with
# the same config (CPU: 1 thread): losses within 1e-3 relative, validation
# AUC within one pair's weight (both logs printed); a second CUDA training
# equal to the first bit for bit (every column but the timings); fd-eval of
# the CPU run's best checkpoint on each device: scores close. Timing columns
# (seconds, images/s) are not compared.
# The AUC tolerance: the validation fold has P fakes and R reals, the AUC
# counts the P x R pairs ordered right (ties a half), so it moves in steps
# of 1 / (P R). Float rounding (losses agree to ~2e-5 relative) can swap a
# nearly tied pair: the first GPU run's AUCs differed by exactly one pair of
# 11 x 33 (0.0028) in epochs 2-3. More than one pair is a real difference.
echo "## fd-train, fd-eval and fd-gradcam, cpu vs cuda" >>"$tmp"
bin="$root/$B/bin"
w="$root/$B/devcheck"
rm -rf "$w" && mkdir -p "$w" || finish 1
t0=$(date +%s)
(
	cd "$w" &&
	"$bin/fd-synth" -q -o D --groups 40 --fake-size 48 --real-width 48,64 --seed 3 &&
	"$bin/fd-index" -q --root D -o idx.tsv &&
	"$bin/fd-split" -q --folds 3 --test 0.2 -o split.tsv idx.tsv &&
	"$bin/fd-pack" -q --root D --size 32 -o pack.safetensors split.tsv &&
	printf '%s\n' '{"model": "simplecnn", "epochs": 3, "batch_size": 16, "num_workers": 2,' \
		' "optimizer": {"lr": 0.001}, "scheduler": {"type": "cosine_annealing", "T_max": 3}}' >cfg.json
) >"$w/prep.log" 2>&1 || { say "making the pack FAILED:"; cat "$w/prep.log" >>"$tmp"; finish 1; }
C="--pack $w/pack.safetensors --fold 0 --config $root/configs/shared.json --config $w/cfg.json --threads 1"
train_ok=1
# validation pairs of fold 0 (fd-train --fold 0 validates on it)
pairs=$(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
	$h["fold"] == "0" && $h["status"] == "ok" { if ($h["label"] == "1") p++; else r++ }
	END { print p * r }' "$w/split.tsv")
[ "${pairs:-0}" -gt 0 ] || { say "split.tsv: fold 0 has no (fake, real) pair"; finish 1; }
for d in cpu cuda cuda2; do
	s=$(tmo 120) || { say "fd-train --device $d skipped: the time budget ($budget s) is spent"; train_ok=0; status=1; continue; }
	if ! OMP_WAIT_POLICY=PASSIVE timeout "$s" "$bin/fd-train" -q $C --device ${d%2} -o "$w/run-$d" >"$w/train-$d.log" 2>&1; then
		say "fd-train --device $d FAILED:"
		tail -20 "$w/train-$d.log" >>"$tmp"
		train_ok=0
		status=1
	fi
	echo "# log.tsv of run-$d (--device ${d%2}):" >>"$tmp"
	cat "$w/run-$d/log.tsv" >>"$tmp" 2>/dev/null
done
if [ $train_ok -eq 1 ]; then
	# columns: epoch train_loss train_auc val_loss val_auc val_acc lr
	if awk -F'\t' -v pairs="$pairs" 'NR == FNR { if (FNR > 1) { tl[FNR] = $2; vl[FNR] = $4; va[FNR] = $5 } next }
		FNR > 1 { n++
			dva = $5 - va[FNR]; if (dva < 0) dva = -dva
			dtl = $2 - tl[FNR]; if (dtl < 0) dtl = -dtl
			dvl = $4 - vl[FNR]; if (dvl < 0) dvl = -dvl
			tol = 1 / pairs + 1e-9
			printf "epoch %d: val_auc cpu %s cuda %s (|diff| %.2g = %.2f pairs of %d, tol 1 pair = %.3g); train_loss |diff| %.2g, val_loss |diff| %.2g (tol 1e-3 relative)\n", $1, va[FNR], $5, dva, dva * pairs, pairs, tol, dtl, dvl
			if (!(dva <= tol) || !(dtl <= 1e-3 * (tl[FNR] < 0 ? -tl[FNR] : tl[FNR])) || !(dvl <= 1e-3 * (vl[FNR] < 0 ? -vl[FNR] : vl[FNR]))) bad++ }
		END { if (n != 3) { print "expected 3 epochs in each log, got " n; exit 1 } exit bad > 0 }' \
		"$w/run-cpu/log.tsv" "$w/run-cuda/log.tsv" >"$w/cmp.txt" 2>&1; then
		cat "$w/cmp.txt" >>"$tmp"
		say "fd-train cpu vs cuda: logs agree"
	else
		cat "$w/cmp.txt" >>"$tmp"
		say "fd-train cpu vs cuda: logs DIFFER beyond tolerance"
		status=1
	fi
	# run to run on the GPU: every column but seconds and images_per_s, as text
	if cut -f1-7 "$w/run-cuda/log.tsv" >"$w/det1.tsv" && cut -f1-7 "$w/run-cuda2/log.tsv" >"$w/det2.tsv" &&
		[ "$(wc -l <"$w/det1.tsv")" -eq 4 ] && cmp -s "$w/det1.tsv" "$w/det2.tsv"; then
		say "fd-train --device cuda twice: the logs are equal bit for bit (3 epochs)"
	else
		say "fd-train --device cuda twice: the logs DIFFER (not deterministic):"
		diff "$w/det1.tsv" "$w/det2.tsv" >>"$tmp" 2>&1
		status=1
	fi
	eval_ok=1
	for d in cpu cuda; do
		s=$(tmo 60) || { say "fd-eval --device $d skipped: the time budget ($budget s) is spent"; eval_ok=0; status=1; continue; }
		if ! OMP_WAIT_POLICY=PASSIVE timeout "$s" "$bin/fd-eval" -q --model "$w/run-cpu/best.safetensors" \
			--pack "$w/pack.safetensors" --device $d --threads 1 -o "$w/eval-$d.tsv" >"$w/eval-$d.log" 2>&1; then
			say "fd-eval --device $d FAILED:"
			tail -20 "$w/eval-$d.log" >>"$tmp"
			eval_ok=0
			status=1
		fi
	done
	if [ $eval_ok -eq 1 ]; then
		# every numeric column of the two score tables, row by row: |diff| <= 1e-4 + 1e-4 |cpu|
		if awk -F'\t' 'NR == FNR { for (i = 1; i <= NF; i++) c[FNR, i] = $i; nf = NF; rows = FNR; next }
			{ for (i = 1; i <= NF; i++) if (FNR > 1 && c[FNR, i] ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) {
				d = $i - c[FNR, i]; if (d < 0) d = -d; a = c[FNR, i]; if (a < 0) a = -a
				n++; if (d > worst) { worst = d; wr = FNR; wc = i }
				if (!(d <= 1e-4 + 1e-4 * a)) bad++ } }
			END { printf "fd-eval cpu vs cuda: %d numbers compared over %d rows, %d out of tolerance (1e-4 + 1e-4|cpu|), worst |diff| %.3g (row %d col %d)\n", n, rows - 1, bad, worst, wr, wc
				exit (n == 0 || bad > 0) }' "$w/eval-cpu.tsv" "$w/eval-cuda.tsv" >"$w/ecmp.txt" 2>&1; then
			cat "$w/ecmp.txt" >>"$tmp"
			say "fd-eval cpu vs cuda: scores agree"
		else
			cat "$w/ecmp.txt" >>"$tmp"
			head -3 "$w/eval-cpu.tsv" "$w/eval-cuda.tsv" >>"$tmp"
			say "fd-eval cpu vs cuda: scores DIFFER"
			status=1
		fi
	fi
	# fd-gradcam of 8 validation rows with the CPU run's best checkpoint on
	# each device: logit and score within 1e-4 + 1e-4 |cpu|, the map's share
	# in the central square within 1e-3 (the maps are made on the host from
	# the device's activations and gradients: a wrong gradient moves them)
	gc_ok=1
	for d in cpu cuda; do
		s=$(tmo 60) || { say "fd-gradcam --device $d skipped: the time budget ($budget s) is spent"; gc_ok=0; status=1; continue; }
		if ! OMP_WAIT_POLICY=PASSIVE timeout "$s" "$bin/fd-gradcam" -q --model "$w/run-cpu/best.safetensors" \
			--pack "$w/pack.safetensors" --only fold=0 -n 8 --device $d --threads 1 -o "$w/gradcam-$d" >"$w/gradcam-$d.log" 2>&1; then
			say "fd-gradcam --device $d FAILED:"
			tail -20 "$w/gradcam-$d.log" >>"$tmp"
			gc_ok=0
			status=1
		fi
	done
	if [ $gc_ok -eq 1 ]; then
		if awk -F'\t' 'FNR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
			NR == FNR { lg[FNR] = $h["logit"]; sc[FNR] = $h["score"]; cs[FNR] = $h["center_share"]; rows = FNR; next }
			{ n++
				d1 = $h["logit"] - lg[FNR]; if (d1 < 0) d1 = -d1; a1 = lg[FNR] < 0 ? -lg[FNR] : lg[FNR]
				d2 = $h["score"] - sc[FNR]; if (d2 < 0) d2 = -d2; a2 = sc[FNR] < 0 ? -sc[FNR] : sc[FNR]
				d3 = $h["center_share"] - cs[FNR]; if (d3 < 0) d3 = -d3
				if (d1 > w1) w1 = d1; if (d3 > w3) w3 = d3
				if (!(d1 <= 1e-4 + 1e-4 * a1) || !(d2 <= 1e-4 + 1e-4 * a2) || !(d3 <= 1e-3)) bad++ }
			END { printf "fd-gradcam cpu vs cuda: %d rows, %d out of tolerance, worst logit |diff| %.3g, worst center_share |diff| %.3g (tol 1e-3)\n", n, bad, w1, w3
				exit (n != 8 || rows - 1 != 8 || bad > 0) }' "$w/gradcam-cpu/gradcam.tsv" "$w/gradcam-cuda/gradcam.tsv" >"$w/gcmp.txt" 2>&1; then
			cat "$w/gcmp.txt" >>"$tmp"
			say "fd-gradcam cpu vs cuda: maps agree"
		else
			cat "$w/gcmp.txt" >>"$tmp"
			say "fd-gradcam cpu vs cuda: maps DIFFER"
			status=1
		fi
	fi
fi
echo "# fd-train/fd-eval/fd-gradcam section: $(($(date +%s) - t0)) s" >>"$tmp"

# --- benchmark: fd fp32 vs PyTorch on the same GPU -------------------------------
# 224 px, batch 32, input already on the GPU, images/s (median of 20 steps
# after 3 warm-up). fd: fp32 (its only mode). PyTorch: fp32 NCHW and
# channels_last with TF32 off, and AMP bf16 channels_last. Ratio = fd / torch.
# Informational: it does not change the status.
echo "## benchmark: fd vs PyTorch eager, 224 px, batch 32 (images/s)" >>"$tmp"
t0=$(date +%s)
python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cudnn", torch.backends.cudnn.version())' >>"$tmp" 2>&1
for a in simplecnn resnet18; do
	s=$(tmo 60) || { echo "$a: benchmark skipped, the time budget ($budget s) is spent" >>"$tmp"; continue; }
	if timeout "$s" "$root/$B/bench/gpu" $a 224 32 20 >"$w/bench-fd-$a.txt" 2>&1; then
		fdt=$(sed -n 's/^train //p' "$w/bench-fd-$a.txt"); fdi=$(sed -n 's/^infer //p' "$w/bench-fd-$a.txt")
		echo "$a fd fp32: train $fdt infer $fdi ($(sed -n 's/^peak_arena_mib //p' "$w/bench-fd-$a.txt") MiB step arena)" >>"$tmp"
	else
		fdt=; fdi=
		echo "$a fd: FAILED: $(tail -3 "$w/bench-fd-$a.txt")" >>"$tmp"
	fi
	s=$(tmo 90) || { echo "$a: torch benchmark skipped, the time budget ($budget s) is spent" >>"$tmp"; continue; }
	if timeout "$s" python3 bench/gpu_vs_torch.py $a 224 32 20 >"$w/bench-torch-$a.txt" 2>"$w/bench-torch-$a.err"; then
		while IFS="$(printf '\t')" read -r mode tt ti peak; do
			if [ -n "$fdt" ]; then
				r=$(awk -v a="$fdt" -v b="$tt" -v c="$fdi" -v d="$ti" 'BEGIN { printf "train %.2fx, infer %.2fx", a / b, c / d }')
			else
				r="no fd numbers"
			fi
			echo "$a torch $mode: train $tt infer $ti (peak $peak MiB); fd/torch: $r" >>"$tmp"
		done <"$w/bench-torch-$a.txt"
	else
		echo "$a torch: FAILED: $(tail -3 "$w/bench-torch-$a.err")" >>"$tmp"
	fi
done
echo "# benchmark section: $(($(date +%s) - t0)) s" >>"$tmp"
finish $status
