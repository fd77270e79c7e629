#!/bin/bash
# oprates.t: bench/oprates.py, oneDNN's verbose log as rates (the sums of
# bench/results/tuned.md's ceiling sections): flops of each kind of call
# from its problem string, against the direct formulas worked out by hand;
# oneDNN 2.x and 3.x line formats, --skip/--calls, --by shape, --peak; an
# unreadable problem names the file and line.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
OPR="$PY $top/bench/oprates.py"
# lines as oneDNN 2.6 and 3.x print them (2.6's from DNNL_VERBOSE=1 of fd)
cat >v.log <<'LOG'
onednn_verbose,info,oneDNN v2.6.3 (commit N/A)
onednn_verbose,create:cache_miss,cpu,convolution,jit:avx512_core,forward_training,src_f32::blocked:acdb:f0,,alg:convolution_direct,mb2_ic3oc4_ih8oh8kh3sh1dh0ph1_iw8ow8kw3sw1dw0pw1,0.1
onednn_verbose,exec,cpu,convolution,jit_wino_4x3:avx512_core,forward_training,src_f32::blocked:aBcd16b:f0 wei_f32::blocked:ABcd16b16a:f0 bia_f32::blocked:a:f0 dst_f32::blocked:aBcd16b:f0,attr-scratchpad:user attr-post-ops:eltwise_relu ,alg:convolution_winograd,mb32_ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1,12.5
onednn_verbose,exec,cpu,reorder,jit:uni,undef,src_f32::blocked:acdb:f0 dst_f32::blocked:aBcd16b:f0,,,32x64x56x56,2.25
onednn_verbose,exec,cpu,convolution,jit_wino_4x3:avx512_core,forward_training,src_f32::blocked:aBcd16b:f0 wei_f32::blocked:ABcd16b16a:f0 bia_f32::blocked:a:f0 dst_f32::blocked:aBcd16b:f0,attr-scratchpad:user ,alg:convolution_winograd,mb32_ic64oc64_ih56oh56kh3sh1dh0ph1_iw56ow56kw3sw1dw0pw1,13.5
dnnl_verbose,exec,cpu,convolution,jit_dw:avx512_core,backward_data,src_f32::blocked:acdb:f0,,alg:convolution_direct,g16mb8_ic16oc16_ih14oh7kh3sh2dh0ph1_iw14ow7kw3sw2dw0pw1,0.5
onednn_verbose,exec,cpu,matmul,brg:avx512_core_bf16,undef,src_bf16::blocked:abc:f0,,,2x32x64:2x64x128,0.25
onednn_verbose,1733000000000.5,primitive,exec,cpu,inner_product,brgemm:avx512_core,forward_training,src_f32::blocked:ab::f0,,,mb4ic512oc2,0.004
onednn_verbose,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,src_f32::blocked:acdb::f0,,alg:convolution_direct,mb1_ic8oc16_id4od2kd3sd1dd0pd0_ih6oh4kh3sh1dh0ph0_iw6ow4kw3sw1dw0pw0,0.1
LOG
ok "reads the log" $OPR --peak 1000 v.log
out=$(cat "$T/.out")
echo "$out" | sed 's/^/# /'
# Winograd: 2 x 32 x 64 x 64 x 56 x 56 x 9 = 7.398752256 GFLOP in 26 ms
is "Winograd rows summed, flops of the direct algorithm" \
	"$(echo "$out" | awk -F'\t' '/jit_wino_4x3/{print $1, $2, $3, $4, $5}')" "2 26.0 14.80 569.1 57%"
# depthwise: g 16, 1 in-channel a group: 2 x 8 x 1 x 16 x 7 x 7 x 9 = 112896
is "grouped convolution (depthwise)" "$(echo "$out" | awk -F'\t' '/jit_dw/{print $1, $3, $4}')" "1 0.00 0.2"
# matmul, batch 2: 2 x 2 x 32 x 64 x 128 = 1048576 flops in 0.25 ms
is "batched matmul" "$(echo "$out" | awk -F'\t' '/matmul/{print $3, $4}')" "0.00 4.2"
# 3.x line with a timestamp: inner product 2 x 4 x 512 x 2 = 8192 flops
is "oneDNN 3.x inner product" "$(echo "$out" | awk -F'\t' '/inner_product/{print $4}')" "2.0"
# 3.x line without one, 3-D: 2 x 1 x 8 x 16 x 2 x 4 x 4 x 27 = 221184 flops in 0.1 ms
is "oneDNN 3.x 3-D convolution" "$(echo "$out" | awk -F'\t' '/brg_conv_fwd/{print $4}')" "2.2"
is "reorders: time only" "$(echo "$out" | awk -F'\t' '/reorder/{print $1, $2, $3, $4, $5}')" "1 2.2 - - -"
is "total line: 7 calls, the create and info lines left out" "$(echo "$out" | tail -1 | cut -d' ' -f2-4)" "7 calls, 29.1"
# --skip 1 --calls 2: the reorder and the second Winograd call only
ok "--skip and --calls" $OPR --skip 1 --calls 2 v.log
is "--skip 1 --calls 2 keeps calls 2-3" "$(awk -F'\t' '/wino/{print $1, $2}' "$T/.out")" "1 13.5"
ok "--by shape" $OPR --by shape v.log
like "--by shape names the problem" "$(cat "$T/.out")" "forward_training mb32_ic64oc64_ih56oh56kh3sh1dh0ph1"
printf 'onednn_verbose,exec,cpu,convolution,jit:avx2,forward_training,src,,,mbX_icY,1.0\n' >>v.log
fails "unreadable problem: file and line named" 1 "v.log:10: unreadable convolution problem" $OPR v.log
: >e.log
fails "a log without exec lines" 1 "e.log: no exec lines" $OPR e.log
fails "a missing log" 1 "none.log: No such file" $OPR none.log
done_testing
