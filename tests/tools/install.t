#!/bin/bash
# install.t: make install puts every tool and man page under PREFIX, and the
# installed tools run.
. "$(dirname "$0")/lib.sh"
shopt -s nullglob
san=; [ "$FD_BUILD" = build-san ] && san=SANITIZE=1
ok "make install" make -s -C "$top" install PREFIX="$T/p" $san
for tool in "$BIN"/fd-*; do
	name=$(basename "$tool")
	ok "$name installed and runs" "$T/p/bin/$name" --version
	ok "$name.1 installed" test -s "$T/p/share/man/man1/$name.1"
done
ok "fd.7 installed" test -s "$T/p/share/man/man7/fd.7"
done_testing
