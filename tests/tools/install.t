#!/bin/bash
# install.t: make install puts every tool and man page under PREFIX, and the
# installed tools run.
. "$(dirname "$0")/lib.sh"
shopt -s nullglob
san=; [ "$FD_BUILD" = build-san ] && san=SANITIZE=1
# In a built tree make install relinks nothing: the tests run it beside the
# others, which execute these binaries. (A fresh clone's build used to delete
# the tools' objects as intermediates, so this make rebuilt them and relinked
# every tool under the running tests: gradcam.t's "Permission denied" in CI.)
links() { stat -c '%n %i %Y' "$BIN"/fd-*; }
before=$(links)
count "tools' objects kept by the build" "$(ls "$top/$FD_BUILD"/obj/tools/fd-*.o | wc -l)" 10
ok "make install" make -s -C "$top" install PREFIX="$T/p" $san
is "make install relinked no tool" "$(links)" "$before"
tools=0
for tool in "$BIN"/fd-*; do
	name=$(basename "$tool")
	tools=$((tools + 1))
	ok "$name installed and runs" "$T/p/bin/$name" --version
	ok "$name.1 installed" test -s "$T/p/share/man/man1/$name.1"
done
count "tools installed" "$tools" 10
ok "fd.7 installed" test -s "$T/p/share/man/man7/fd.7"
# Installed tools find their data (sources table, MTCNN weights) under share/fd.
ok "installed fd-synth makes data" "$T/p/bin/fd-synth" -q -o "$T/d" --groups 4
ok "installed fd-index finds share/fd/sources.tsv" env -u FD_CONFIG_DIR "$T/p/bin/fd-index" -q --root "$T/d" -o "$T/i.tsv"
ok "installed fd-facecrop finds share/fd/mtcnn" env -u FD_MODELS_DIR "$T/p/bin/fd-facecrop" -q --root "$T/d" -o "$T/f.tsv" "$T/i.tsv"
done_testing
