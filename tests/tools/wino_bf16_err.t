#!/bin/bash
# wino_bf16_err.t: bench/wino_bf16_err.py, the arithmetic behind not
# building a bf16 Winograd (bench/results/tuned.md "bf16 Winograd:
# measured, not built"): every algorithm's matrices check out against the
# float64 convolution (fp32 Winograd within 1e-5), and the table's claims
# hold at the documented seed: F(2x2, 3x3) in bf16 within 2x the direct
# bf16 error, F(3x3) and F(4x4) at 4x it or more; a broken matrix is caught.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
W="$PY $top/bench/wino_bf16_err.py"
ok "runs at the documented seed" $W
out=$(cat "$T/.out")
echo "$out" | sed 's/^/# /'
rows=$(echo "$out" | grep -c '^| F(')
is "six Winograd rows" "$rows" 6
# column 7: the error over the direct bf16 convolution's
ratio() { echo "$out" | awk -F'|' -v a="$1" -v p="$2" '$2 ~ a && $3 ~ p {gsub(/ /, "", $7); print $7}'; }
r2=$(ratio 'F\\(2x2' '0, 1, -1, inf')
r44=$(ratio 'F\\(4x4' '0, 1, -1, 2, -2, inf')
r4b=$(ratio 'F\\(4x4' '0, 1, -1, 2, -1/2, inf')
r33=$(ratio 'F\\(3x3' '0, 1, -1, 2, inf')
echo "# ratios: F(2x2) $r2, F(4x4) $r44 / $r4b, F(3x3) $r33"
ok "F(2x2) in bf16: at most 2x the direct error" awk -v r="$r2" 'BEGIN { exit !(r != "" && r > 1 && r <= 2) }'
ok "F(4x4), fd's fp32 points, in bf16: 5x the direct error or more" awk -v r="$r44" 'BEGIN { exit !(r != "" && r >= 5) }'
ok "F(4x4), the best points tried: still 4x or more" awk -v r="$r4b" 'BEGIN { exit !(r != "" && r >= 4) }'
ok "F(3x3) in bf16: 4x or more" awk -v r="$r33" 'BEGIN { exit !(r != "" && r >= 4) }'
# the direct bf16 convolution's own error (column 6, "(direct E)"): bf16's
# rounding, 2^-9 relative, at this scale
off=$(echo "$out" | awk -F'|' '$2 ~ /F\(/ {sub(/.*direct /, "", $6); sub(/\).*/, "", $6); if (!($6 + 0 >= 1e-3 && $6 + 0 <= 5e-3)) print}' | wc -l)
is "the direct bf16 error is bf16's rounding (1e-3 to 5e-3) in every row" "$off" 0
# every fp32 Winograd error (last column) under 1e-5: the matrices are right
bad=$(echo "$out" | awk -F'|' '$2 ~ /F\(/ {gsub(/ /, "", $10); if (!($10 + 0 < 1e-5) || $10 == "") print}' | wc -l)
is "every fp32 Winograd within 1e-5 of float64" "$bad" 0
fails "a broken B^T is caught, naming the algorithm, no partial table" 1 \
	'F\(2x2, 3x3\) on points 0, 1, -1: the matrices are wrong' $W --tiles 20 --channels 16 --break
done_testing
