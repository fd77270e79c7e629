#!/bin/bash
# link.t: only the tools that run a network link oneDNN (libfdnn.a and
# -ldnnl go to NN_TOOLS in the Makefile); the others load without it.
. "$(dirname "$0")/lib.sh"
n=0
for t in fd-st fd-split fd-index fd-synth fd-pack fd-pth fd-report; do
	ok "$t built" test -x "$BIN/$t"
	is "$t does not link oneDNN" "$(ldd "$BIN/$t" | grep -c dnnl)" 0
	n=$((n + 1))
done
for t in fd-train fd-eval fd-facecrop fd-gradcam; do
	like "$t links oneDNN" "$(ldd "$BIN/$t")" "libdnnl"
	n=$((n + 1))
done
is "tools checked" "$n" 11
done_testing
