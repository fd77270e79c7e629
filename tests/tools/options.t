#!/bin/bash
# options.t: every tool parses its options the same way (tools/cli.h,
# doc/architecture.md "Option syntax"). The tools are build/bin/fd-*, so a new
# tool is covered without editing this file; each tool's options are read from
# its --help (the option lines "  --name VALUE   text" and "  --flag   text",
# and the usage line), so a new option is covered too.
. "$(dirname "$0")/lib.sh"
shopt -s nullglob

# run OUTPREFIX cmd...: stdout, stderr and exit status into OUTPREFIX.{out,err,rc}
# (stdin empty; in the folder $T/cwd, which must stay empty: no usage error
# or failure leaves a file behind)
mkdir "$T/cwd"
run() {
	local p=$1; shift
	(cd "$T/cwd" && "$@" </dev/null >"$p.out" 2>"$p.err"; echo $? >"$p.rc")
}

# usage_error "desc" name regex cmd...: exit 2, nothing on stdout, exactly one
# line on stderr, "name: ..." matching regex
usage_error() {
	local d=$1 name=$2 re=$3; shift 3
	run "$T/u" "$@"
	local rc lines
	rc=$(cat "$T/u.rc"); lines=$(wc -l <"$T/u.err")
	if [ "$rc" = 2 ] && [ ! -s "$T/u.out" ] && [ "$lines" = 1 ] && grep -Eq -- "^$name: ($re)" "$T/u.err"; then
		_report 0 "$d"; else
		_report 1 "$d"; echo "#   command: $*"; echo "#   exit $rc (expected 2), $lines stderr lines (expected 1)"
		sed 's/^/#   stderr: /' "$T/u.err" | head -5; echo "#   expected /^$name: ($re)/"
		sed 's/^/#   unexpected stdout: /' "$T/u.out" | head -3; fi
}

tools=0 longs=0 values=0 flags=0 nshort=0
for tool in "$BIN"/fd-*; do
	[ -x "$tool" ] || continue
	name=$(basename "$tool")
	tools=$((tools + 1))

	run "$T/h" "$tool" --help
	ok "$name --help: exit 0, nothing on stderr" test "$(cat "$T/h.rc")" = 0 -a ! -s "$T/h.err"
	like "$name --help: usage line on stdout" "$(head -1 "$T/h.out")" "^usage: $name( |$)"
	run "$T/v" "$tool" --version
	ok "$name --version: exit 0, nothing on stderr" test "$(cat "$T/v.rc")" = 0 -a ! -s "$T/v.err"
	like "$name --version on stdout" "$(cat "$T/v.out")" "^$name \(fd\) [0-9]"

	# options documented by --help: "--x VALUE" (value) and "[--x]" or a
	# help line "  --x   text" (flag); every option of a tool must be in it
	usage=$(head -1 "$T/h.out")
	vals=$( { printf '%s\n' "$usage" | grep -oE -- '--[a-z0-9-]+ [^ |[]' | cut -d' ' -f1
		  grep -oE -- '^  --[a-z0-9-]+ [^ ]+( {2,}|$)' "$T/h.out" | awk '{print $1}'; } | sort -u)
	flgs=$( { printf '%s\n' "$usage" | grep -oE -- '\[--[a-z0-9-]+\]' | tr -d '[]'
		  grep -oE -- '^  --[a-z0-9-]+( {2,}|$)' "$T/h.out" | awk '{print $1}'; } | sort -u)
	for o in $vals; do
		if printf '%s\n' $flgs | grep -qx -- "$o"; then _report 1 "$name $o: documented both as a flag and with a value"; fi
	done
	# short options with a value ("-o FILE", "-n N")
	shorts=$( { printf '%s\n' "$usage" | grep -oE -- '(^| |\[)-[a-z] [A-Z]' | grep -oE -- '-[a-z]'
		    grep -oE -- '^  -[a-z] [^ ]+' "$T/h.out" | awk '{print $1}'; } | sort -u)

	usage_error "$name: unknown option" "$name" "unknown option '--no-such-option'" "$tool" --no-such-option
	usage_error "$name: unknown option after -q, with a value" "$name" "unknown option '--no-such-option'" \
		"$tool" -q --no-such-option=1 x
	usage_error "$name: unknown short option" "$name" "unknown option '-Z'" "$tool" -Z
	usage_error "$name: '-q' takes no value" "$name" "unknown option '-q=1'" "$tool" -q=1
	for o in $shorts; do
		nshort=$((nshort + 1))
		usage_error "$name $o: missing value" "$name" "option '$o' needs a value" "$tool" "$o"
		usage_error "$name: no clustered short options (-q${o#-})" "$name" "unknown option '-q${o#-}'" "$tool" "-q${o#-}" x
		usage_error "$name: no attached short value (${o}x)" "$name" "unknown option '${o}x'" "$tool" "${o}x"
		usage_error "$name: no '$o=X'" "$name" "unknown option '$o=x'" "$tool" "$o=x"
	done

	for o in $vals $flgs; do
		longs=$((longs + 1))
		# an abbreviation (one letter short) is refused
		ab=${o%?}
		if ! printf '%s\n' $vals $flgs | grep -qx -- "$ab"; then
			usage_error "$name: abbreviation $ab of $o refused" "$name" "unknown option '$ab'" "$tool" "$ab" x
		fi
	done
	for o in $vals; do
		values=$((values + 1))
		usage_error "$name $o: missing value" "$name" "option '$o' needs a value" "$tool" "$o"
		# "--opt=V" and "--opt V" are the same command line (whatever it does
		# with a value that is no valid one: the same exit, bytes, messages)
		run "$T/a" "$tool" "$o=x-bad-value"
		run "$T/b" "$tool" "$o" x-bad-value
		if cmp -s "$T/a.rc" "$T/b.rc" && cmp -s "$T/a.out" "$T/b.out" && cmp -s "$T/a.err" "$T/b.err" &&
		   ! grep -Eq "unknown option|takes no value|needs a value" "$T/a.err"; then
			_report 0 "$name: $o=V is $o V"; else
			_report 1 "$name: $o=V is $o V"; sed 's/^/#   =: /' "$T/a.err" "$T/a.rc" | head -4
			sed 's/^/#   _: /' "$T/b.err" "$T/b.rc" | head -4; fi
	done
	for o in $flgs; do
		flags=$((flags + 1))
		usage_error "$name $o: a flag takes no value" "$name" "option '$o' takes no value" "$tool" "$o=1"
	done

	# "--" ends the options: what follows is an operand, never an option,
	# never --help
	run "$T/d" "$tool" -- --help
	ok "$name -- --help: not help, an operand (fails, stdout empty)" \
		test "$(cat "$T/d.rc")" != 0 -a ! -s "$T/d.out"
	run "$T/d" "$tool" -- --no-such-option
	ok "$name -- --no-such-option: an operand, not an unknown option" \
		test "$(cat "$T/d.rc")" != 0 -a ! -s "$T/d.out"
	if grep -q "unknown option" "$T/d.err"; then _report 1 "$name: '--' ends the options"; cat "$T/d.err"; fi
done
is "no command line above left a file behind" "$(ls -A "$T/cwd")" ""
count "tools checked" "$tools" 11
count "long options checked" "$longs" 60
count "options with a value checked (--opt=V = --opt V)" "$values" 50
count "flags checked" "$flags" 8
count "short options with a value checked" "$nshort" 11

# The same equalities on real runs: the outputs of valid command lines.
ok "fd-synth --groups=3 --seed=7" fd-synth -q -o "$T/s1" --groups=3 --seed=7
ok "fd-synth --groups 3 --seed 7" fd-synth -q -o "$T/s2" --groups 3 --seed 7
ok "fd-synth: same files either way" diff -r "$T/s1" "$T/s2"
ok "fd-index --root=D" fd-index -q --root="$T/s1" --stats -o "$T/i1.tsv"
ok "fd-index --root D" fd-index -q --root "$T/s1" --stats -o "$T/i2.tsv"
ok "fd-index: same bytes either way" cmp "$T/i1.tsv" "$T/i2.tsv"
ok "fd-split --folds=2 --seed=3" fd-split -q --folds=2 --seed=3 -o "$T/p1.tsv" "$T/i1.tsv"
cp "$T/i1.tsv" "$T/-i.tsv"
ok "fd-split -- -i.tsv: a file that starts with '-', after --" \
	sh -c 'cd "$1" && fd-split -q --folds 2 --seed 3 -o p2.tsv -- -i.tsv' sh "$T"
ok "fd-split: same bytes either way" cmp "$T/p1.tsv" "$T/p2.tsv"
usage_error "fd-split -i.tsv without --: an unknown option" fd-split "unknown option '-i.tsv'" fd-split -i.tsv
ok "fd-split reads '-' as standard input" sh -c 'fd-split -q --folds 2 --seed 3 - <"$1" | cmp - "$2"' sh \
	"$T/i1.tsv" "$T/p1.tsv"
ok "fd-pack --root=D --size=16" fd-pack -q --root="$T/s1" --size=16 --geometry=letterbox -o "$T/k1.safetensors" "$T/p1.tsv"
ok "fd-pack --root D --size 16" fd-pack -q --root "$T/s1" --size 16 --geometry letterbox "$T/p1.tsv" -o "$T/k2.safetensors"
fd-st "$T/k1.safetensors" >"$T/k1.lst"
fd-st "$T/k2.safetensors" >"$T/k2.lst"
ok "fd-pack: same tensors either way" test -s "$T/k1.lst" -a "$(cat "$T/k1.lst")" = "$(cat "$T/k2.lst")"
ok "fd-pack: same sidecar either way" cmp "$T/k1.tsv" "$T/k2.tsv"
cp "$T/k1.safetensors" "$T/-k.safetensors"
ok "fd-st -- -k.safetensors" sh -c 'cd "$1" && fd-st -- -k.safetensors >k3.lst' sh "$T"
ok "fd-st: the same listing" cmp "$T/k1.lst" "$T/k3.lst"
done_testing
