#!/bin/bash
# layers.t: each lib module includes only the modules below it (the layers of
# doc/architecture.md): core -> io -> image, eval -> nn -> models, data ->
# train -> face -> report -> tools. Modules on one step (image and eval;
# models and data) do not include each other. A new lib/ folder must be
# placed in the table before it builds into a passing suite.
. "$(dirname "$0")/lib.sh"

# module: the modules it may include (besides itself)
allowed() {
	case $1 in
	core) echo "" ;;
	io) echo "core" ;;
	image) echo "core io" ;;
	eval) echo "core io" ;;
	nn) echo "core io image eval" ;;
	models) echo "core io image eval nn" ;;
	data) echo "core io image eval nn" ;;
	train) echo "core io image eval nn models data" ;;
	face) echo "core io image eval nn models data train" ;;
	report) echo "core io image eval nn models data train face" ;;
	*) return 1 ;;
	esac
}

# check ROOT: print "file:line: module includes X" for each include outside
# the table (and each include that climbs out with ".."); the count of
# includes checked goes to $T/.checked.
check() {
	local root=$1 n=0 dir m f line inc
	for dir in "$root"/lib/*/; do
		m=$(basename "$dir")
		if ! allowed "$m" >/dev/null; then
			echo "lib/$m: not in the table of layers"
			continue
		fi
		local ok_list=" $m $(allowed "$m") "
		for f in "$dir"*.c "$dir"*.h; do
			[ -e "$f" ] || continue
			while IFS=: read -r line inc; do
				n=$((n + 1))
				inc=${inc#*\"}
				inc=${inc%%\"*}
				case $inc in
				*..*) echo "lib/$m/$(basename "$f"):$line: $m includes '$inc' (no '..')"; continue ;;
				*/*) ;;
				*) continue ;; # a header of the same folder
				esac
				case $ok_list in
				*" ${inc%%/*} "*) ;;
				*) echo "lib/$m/$(basename "$f"):$line: $m includes ${inc%%/*} ('$inc')" ;;
				esac
			done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
		done
	done
	echo "$n" >"$T/.checked"
}

out=$(check "$top")
is "every lib module includes only modules below it" "$out" ""
checked=$(cat "$T/.checked")
ok "includes were checked ($checked)" test "$checked" -gt 100

# negative controls: a tree that breaks each rule
mkdir -p "$T/bad/lib/core" "$T/bad/lib/data" "$T/bad/lib/models" "$T/bad/lib/gizmo"
printf '#include "core/fd_err.h"\n#include "nn/fd_tensor.h"\n' >"$T/bad/lib/core/x.c"
printf '#include "models/fd_model.h"\n' >"$T/bad/lib/data/y.h"
printf '#include "data/fd_pack.h"\n  #  include "../nn/act.h"\n#include "mbconv.h"\n' >"$T/bad/lib/models/z.c"
printf '/* nothing */\n' >"$T/bad/lib/gizmo/w.c"
bad=$(check "$T/bad")
like "control: core including nn is caught" "$bad" "lib/core/x.c:2: core includes nn"
like "control: data including models (same step) is caught" "$bad" "lib/data/y.h:1: data includes models"
like "control: models including data (same step) is caught" "$bad" "lib/models/z.c:1: models includes data"
like "control: '..' is caught" "$bad" "lib/models/z.c:2: models includes '../nn/act.h'"
like "control: a module missing from the table is caught" "$bad" "lib/gizmo: not in the table"
is "control: exactly those five" "$(printf '%s\n' "$bad" | wc -l)" 5
done_testing
