# lib.sh: the shared helper of fd's shell tool tests (TAP under prove).
# Source it; it puts the built tools first on PATH, makes a scratch dir $T
# removed on exit, and offers ok/is/like/fails/count/no_file/done_testing.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
FD_BUILD=${FD_BUILD:-build}
BIN=$top/$FD_BUILD/bin
PATH=$BIN:$PATH
PY=/usr/bin/python3
export LC_ALL=C
T=$(mktemp -d "${TMPDIR:-/tmp}/fdtest.XXXXXX")
trap 'rm -rf "$T"' EXIT
_n=0
_fail=0

_report() { # status description
	_n=$((_n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $_n - $2"; else echo "not ok $_n - $2"; _fail=$((_fail + 1)); fi
}

# ok "desc" cmd args...: the command must exit 0 (its stderr is shown on failure).
ok() {
	local d=$1; shift
	if "$@" >"$T/.out" 2>"$T/.err"; then _report 0 "$d"; else
		_report 1 "$d"; echo "#   command: $*"; sed 's/^/#   /' "$T/.err" | head -20; fi
}

# is "desc" got expected
is() {
	if [ "$2" = "$3" ]; then _report 0 "$1"; else
		_report 1 "$1"; echo "#   got:      '$2'"; echo "#   expected: '$3'"; fi
}

# like "desc" text regex (grep -E)
like() {
	if printf '%s' "$2" | grep -Eq -- "$3"; then _report 0 "$1"; else
		_report 1 "$1"; echo "#   '$2'"; echo "#   does not match /$3/"; fi
}

# fails "desc" code regex cmd args...: exit status must be code, stderr match
# regex (which must not be empty: that would match anything) and stdout stay
# empty (bad input and bad usage write no partial output).
fails() {
	local d=$1 code=$2 re=$3; shift 3
	"$@" >"$T/.out" 2>"$T/.err"
	local rc=$?
	if [ -n "$re" ] && [ "$rc" -eq "$code" ] && grep -Eq -- "$re" "$T/.err" && [ ! -s "$T/.out" ]; then
		_report 0 "$d"; else
		_report 1 "$d"; echo "#   command: $*"; echo "#   exit $rc (expected $code)"
		sed 's/^/#   stderr: /' "$T/.err" | head -10; echo "#   expected stderr /$re/ (not empty)"
		sed 's/^/#   unexpected stdout: /' "$T/.out" | head -5; fi
}

# count "desc" n min: a count of checked cases, at least min (> 0).
count() {
	if [ "$3" -gt 0 ] && [ "$2" -ge "$3" ] 2>/dev/null; then _report 0 "$1 ($2)"; else
		_report 1 "$1"; echo "#   got $2, expected at least $3 (> 0)"; fi
}

# no_file "desc" path: nothing at path, and no temporary beside it.
no_file() {
	local d=$1 p=$2 dir base
	dir=$(dirname "$p"); base=$(basename "$p")
	if [ ! -e "$p" ] && ! ls -a "$dir" 2>/dev/null | grep -q "^\.$base\.tmp"; then _report 0 "$d"; else
		_report 1 "$d"; echo "#   '$p' (or a temporary) exists"; fi
}

# serve DIR: python3 -m http.server on 127.0.0.1 over DIR at a free port
# (port 0, read from its log); sets srv_pid (the caller's EXIT trap kills it)
# and U=http://127.0.0.1:PORT, or bails out.
serve() {
	"$PY" -u -m http.server --bind 127.0.0.1 --directory "$1" 0 >"$T/srv.log" 2>&1 &
	srv_pid=$!
	local port="" _
	for _ in $(seq 100); do
		port=$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' "$T/srv.log" | head -1)
		[ -n "$port" ] && break
		sleep 0.05
	done
	[ -n "$port" ] || { echo "Bail out! the HTTP server did not start: $(cat "$T/srv.log")"; exit 1; }
	U=http://127.0.0.1:$port
}

done_testing() {
	echo "1..$_n"
	[ "$_fail" -eq 0 ]
	exit $?
}
