#!/bin/bash
# shared.t: every key of configs/shared.json is read by some tool (a key that
# nothing reads must not exist: issue 12 item 10). A key is read when its
# dotted path appears as a string literal in a C file of lib/ or tools/ other
# than the schema (lib/core/fd_config.c), i.e. in a fd_config_get_* /
# fd_config_has call site or a table of such keys. The checker is shown to
# catch an unread key (val_ratio, planted). fd-split's use of seed and
# test_ratio is checked by behaviour in split.t.
. "$(dirname "$0")/lib.sh"
unread() { # config file -> the leaf keys no reader names, or "none"
	"$PY" - "$1" "$top" <<'PY'
import glob, json, sys
def leaves(d, pre=""):
    for k, v in d.items():
        p = pre + k
        if isinstance(v, dict):
            yield from leaves(v, p + ".")
        else:
            yield p
src = ""
for f in glob.glob(sys.argv[2] + "/lib/**/*.c", recursive=True) + glob.glob(sys.argv[2] + "/tools/*.c"):
    if not f.endswith("lib/core/fd_config.c"):
        src += open(f).read()
keys = list(leaves(json.load(open(sys.argv[1]))))
bad = [k for k in keys if '"%s"' % k not in src]
print(" ".join(bad) if bad else "none %d" % len(keys))
PY
}
like "every key of shared.json is read" "$(unread "$top/configs/shared.json")" "^none [1-9][0-9]*$"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["val_ratio"]=0.1; json.dump(d, open(sys.argv[2], "w"))' \
	"$top/configs/shared.json" "$T/planted.json"
is "the check catches an unread key" "$(unread "$T/planted.json")" "val_ratio"
is "val_ratio is not in the schema" "$(grep -c '"val_ratio"' "$top/lib/core/fd_config.c")" 0
done_testing
