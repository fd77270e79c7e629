#!/bin/bash
# fuzz.t: build every libFuzzer target (tests/fuzz/fuzz.mk) and run each for
# 3 seconds on its seed corpus, so CI exercises them briefly. A crash, leak or
# sanitizer report fails the test and leaves the input in build-fuzz/crash-*.
. "$(dirname "$0")/lib.sh"
if ! command -v clang >/dev/null; then
	echo "1..0 # SKIP clang not installed"
	exit 0
fi
ok "fuzz targets build" make -s -C "$top" fuzz-build
targets=0
for src in "$top"/tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	targets=$((targets + 1))
	n=$(basename "$src" .c); n=${n#fuzz_}
	mkdir -p "$T/$n"
	seeds=$top/tests/fuzz/corpus/$n
	[ -d "$seeds" ] || seeds=
	ok "fuzz_$n runs 3 s clean" "$top/build-fuzz/fuzz_$n" -max_total_time=3 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$top/build-fuzz/crash-$n-" "$T/$n" $seeds
done
count "fuzz targets run" "$targets" 1
done_testing
