#!/bin/bash
# man.t: every tool has a man page, and each page's SYNOPSIS is exactly the
# usage line its --help prints (roff markup removed, lines joined).
. "$(dirname "$0")/lib.sh"
shopt -s nullglob

synopsis() { # man page → one line
	awk '/^\.SH /{ on = ($2 == "SYNOPSIS"); next } on' "$1" |
		grep -v -E '^\.([a-z]+|PP|HP|TP|LP|P|IP)( |$)' |
		sed -E 's/^\.(B|I|BR|BI|IR|RB|RI|IB) //; s/\\f[BIRP]//g; s/\\-/-/g; s/\\ / /g; s/\\&//g' |
		tr '\n' ' ' | tr -s ' ' | sed -E 's/^ +//; s/ +$//'
}

tools=0
for tool in "$BIN"/fd-*; do
	[ -x "$tool" ] || continue
	tools=$((tools + 1))
	name=$(basename "$tool")
	page=$top/man/$name.1
	if [ ! -f "$page" ]; then _report 1 "$name has a man page"; continue; fi
	_report 0 "$name has a man page"
	help=$("$tool" --help | head -1 | sed -E 's/^usage: //')
	is "$name: man SYNOPSIS matches --help" "$(synopsis "$page")" "$help"
	like "$name --version" "$("$tool" --version)" "^$name \(fd\) [0-9]"
done
count "tools with a man page checked" "$tools" 10
ok "man/fd.7 exists" test -s "$top/man/fd.7"
ok "man/fd.7 lists the exit codes" grep -q "EXIT STATUS" "$top/man/fd.7"
done_testing
