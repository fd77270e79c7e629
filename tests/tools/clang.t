#!/bin/bash
# clang.t: the library, every tool and every unit test also build with clang
# under -Wall -Wextra -Werror (gcc builds the main tree).
. "$(dirname "$0")/lib.sh"
if ! command -v clang >/dev/null; then echo "1..0 # SKIP clang not installed"; exit 0; fi
ok "clang build (build-clang/)" make -s -C "$top" tools units CC=clang B=build-clang SANITIZE=
ok "clang-built fd-split runs" "$top/build-clang/bin/fd-split" --version
done_testing
