#!/bin/bash
# interop.t: fd checkpoints load in torchvision with load_state_dict(strict=True)
# and give fd's logits. t_model_export writes, for every registered model, a
# checkpoint (perturbed batchnorm statistics and constant-initialised views)
# and fd's eval logits on a fixed 64x64 input; interop_check.py (Debian's
# torch 1.13 / torchvision) loads each strictly and runs the same input.
. "$(dirname "$0")/lib.sh"
EXPORT=$top/$FD_BUILD/tests/t_model_export
X=$top/tests/tools/interop_check.py

# run the exporter here (not the unit test's output): prove -j2 runs tests in
# any order, and each run gets its own folder
"$EXPORT" "$T/ck" >"$T/export.tap" 2>&1
rc=$?
is "t_model_export wrote every model's checkpoint and logits" "$rc" 0
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$T/export.tap" | grep -v '^#   ok' | head -20
n=$(grep -c 'checkpoint saved' "$T/export.tap")
count "models exported" "$n" 1

"$PY" "$X" "$T/ck" >"$T/check.out" 2>"$T/check.err"
is "interop_check exit status" "$?" 0
sed 's/^/#   /' "$T/check.err" | head -10
is "torchvision checked every exported model" "$(wc -l <"$T/check.out")" "$n"
while IFS=$'\t' read -r name res detail; do
	is "$name: torchvision load_state_dict(strict=True), eval logits equal fd's ($detail)" "$res" ok
done <"$T/check.out"

# the check can fail (one run for both, torch is slow to import): resnet18's
# checkpoint with resnet34's input and logits; resnet18's checkpoint under
# resnet34's name (its fd.arch says otherwise)
mkdir -p "$T/neg"
cp "$T/ck/resnet18.safetensors" "$T/neg/"
cp "$T/ck/resnet34_io.safetensors" "$T/neg/resnet18_io.safetensors"
cp "$T/ck/resnet18.safetensors" "$T/neg/resnet34.safetensors"
cp "$T/ck/resnet34_io.safetensors" "$T/neg/"
out=$("$PY" "$X" "$T/neg" 2>&1)
is "bad pairs make the check fail (exit 1)" "$?" 1
like "other logits are caught" "$out" $'^resnet18\tfail\t'
like "another architecture's checkpoint is refused" "$out" $'resnet34\tfail\tfd.arch is .resnet18.'
done_testing
