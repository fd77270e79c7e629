#!/bin/bash
# split.t: fd-split. Properties (group-aware, test share, nesting, balance of
# subsamples) are checked by split_props.py; balance is compared with
# scikit-learn's StratifiedGroupKFold (tests/ref/split_ref.py, same metric code
# in split_metrics.py); then determinism, golden bytes and bad input.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
R=$top/$FD_BUILD/ref/split_ref
props() { "$PY" "$here/split_props.py" "$@" 2>&1; }

# --help / man page
help=$(fd-split --help | head -1 | sed -E 's/^usage: //')
is "--help usage line" "$help" \
	"fd-split [--config FILE]... [--folds K] [--test FRAC] [--fractions 0.2,0.5,1] [--seed N] [--allow-one-class] [-o FILE] [FILE|-]"
man_syn=$(awk '/^\.SH /{ on = ($2 == "SYNOPSIS"); next } on' "$top/man/fd-split.1" |
	sed -E 's/\\-/-/g; s/\\f[BIRP]//g' | tr '\n' ' ' | tr -s ' ' | sed -E 's/ +$//')
is "man SYNOPSIS equals --help" "$man_syn" "$help"

# Properties on the realistic and the DFF-shaped index.
for f in real dff; do
	ok "$f: split with test set and fractions" \
		fd-split -q --test 0.1 --fractions 0.2,0.5,1 -o "$T/$f.tsv" "$R/$f.tsv"
	is "$f: groups whole, test share, nesting, balanced subsamples" \
		"$(props "$R/$f.tsv" "$T/$f.tsv" 5 0.1 0.2,0.5,1)" ok
done
ok "real: 3 folds, test 0.25, fractions 0.1,0.3" \
	fd-split -q --folds 3 --test 0.25 --fractions 0.1,0.3 -o "$T/r3.tsv" "$R/real.tsv"
is "real: properties with 3 folds" "$(props "$R/real.tsv" "$T/r3.tsv" 3 0.25 0.1,0.3)" ok
ok "dff: 10 folds, no test set, no fractions" fd-split -q --folds 10 -o "$T/d10.tsv" "$R/dff.tsv"
is "dff: properties with 10 folds" "$(props "$R/dff.tsv" "$T/d10.tsv" 10 0 -)" ok

# The checker itself must catch a group split over two folds and broken nesting.
awk -F'\t' 'BEGIN{OFS="\t"} NR==2{$10 = ($10 == "0") ? "1" : "0"} {print}' "$T/real.tsv" >"$T/bad1.tsv"
like "checker catches a group in two folds" "$(props "$R/real.tsv" "$T/bad1.tsv" 5 0.1 0.2,0.5,1)" \
	"FAIL: group .* in folds"
awk -F'\t' 'BEGIN{OFS="\t"; done = 0} NR>1 && !done && $10 != "test" && $10 != "excluded" && $13 == "1" {$11 = "1"; $12 = "0"; done = 1} {print}' \
	"$T/real.tsv" >"$T/bad2.tsv"
like "checker catches broken nesting" "$(props "$R/real.tsv" "$T/bad2.tsv" 5 0.1 0.2,0.5,1)" \
	"FAIL: .*in20 without in50"

# Balance against scikit-learn (StratifiedGroupKFold, shuffle=True with the same
# seed, and shuffle=False against our seed 42).
for f in real dff; do
	for seed in 42 1 7 noshuffle; do
		fd-split -q --seed "${seed/noshuffle/42}" -o "$T/b.tsv" "$R/$f.tsv"
		read -r our_max our_mean our_comp < <("$PY" "$here/split_metrics.py" "$T/b.tsv" 5)
		read -r sk_max sk_mean sk_comp < <("$PY" "$here/split_metrics.py" "$R/sk_${f}_$seed.tsv" 5)
		echo "# $f seed $seed: max std of fold shares: fd $our_max, sklearn $sk_max;" \
			"mean: fd $our_mean, sklearn $sk_mean; composition: fd $our_comp, sklearn $sk_comp"
		ok "$f seed $seed: max std of per-fold stratum shares <= sklearn's" \
			awk -v a="$our_max" -v b="$sk_max" 'BEGIN { exit !(a + 0 <= b + 0 && b + 0 > 0) }'
		ok "$f seed $seed: mean std (sklearn's criterion) <= sklearn's" \
			awk -v a="$our_mean" -v b="$sk_mean" 'BEGIN { exit !(a + 0 <= b + 0 && b + 0 > 0) }'
		ok "$f seed $seed: max std of fold composition <= sklearn's" \
			awk -v a="$our_comp" -v b="$sk_comp" 'BEGIN { exit !(a + 0 <= b + 0 && b + 0 > 0) }'
	done
done

# --config: seed and test_ratio come from the central config; the command line overrides
printf '{"seed": 7, "test_ratio": 0.2, "batch_size": 8}\n' >"$T/c.json"
printf '{"test_ratio": 0.3}\n' >"$T/c2.json"
fd-split -q --seed 7 --test 0.2 -o "$T/opt.tsv" "$R/real.tsv"
ok "--config: seed and test_ratio as --seed 7 --test 0.2" \
	bash -c "fd-split -q --config '$T/c.json' -o '$T/cfg.tsv' '$R/real.tsv' && cmp -s '$T/cfg.tsv' '$T/opt.tsv'"
ok "--config: not the defaults" bash -c "fd-split -q -o '$T/def.tsv' '$R/real.tsv' && ! cmp -s '$T/def.tsv' '$T/cfg.tsv'"
fd-split -q --seed 7 --test 0.3 -o "$T/opt2.tsv" "$R/real.tsv"
ok "--config repeated: later files merge over earlier ones" \
	bash -c "fd-split -q --config '$T/c.json' --config '$T/c2.json' -o '$T/cfg2.tsv' '$R/real.tsv' && cmp -s '$T/cfg2.tsv' '$T/opt2.tsv'"
fd-split -q --seed 42 --test 0.2 -o "$T/opt3.tsv" "$R/real.tsv"
ok "--seed overrides the config's seed, before or after --config" \
	bash -c "fd-split -q --seed 42 --config '$T/c.json' -o '$T/cfgo3a.tsv' '$R/real.tsv' && cmp -s '$T/cfgo3a.tsv' '$T/opt3.tsv' &&
		fd-split -q --config '$T/c.json' --seed 42 -o '$T/cfgo3b.tsv' '$R/real.tsv' && cmp -s '$T/cfgo3b.tsv' '$T/opt3.tsv'"
fd-split -q --seed 7 --test 0.1 -o "$T/opt4.tsv" "$R/real.tsv"
ok "--test overrides the config's test_ratio" \
	bash -c "fd-split -q --config '$T/c.json' --test 0.1 -o '$T/cfgo4.tsv' '$R/real.tsv' && cmp -s '$T/cfgo4.tsv' '$T/opt4.tsv'"
ok "configs/shared.json: its seed and test_ratio" \
	bash -c "fd-split -q --config '$top/configs/shared.json' -o '$T/sh.tsv' '$R/real.tsv' && fd-split -q --seed 42 --test 0.1 -o '$T/sh2.tsv' '$R/real.tsv' && cmp -s '$T/sh.tsv' '$T/sh2.tsv'"
printf '{"val_ratio": 0.1}\n' >"$T/vr.json"
fails "val_ratio is not a key (K-fold decides the validation share)" 1 "val_ratio" \
	fd-split --config "$T/vr.json" -o "$T/cfgo5.tsv" "$R/real.tsv"
printf '{"test_ratio": 1.5}\n' >"$T/tr.json"
fails "config test_ratio out of range names the key" 1 "test_ratio 1.5 is not in \\[0, 1\\)" \
	fd-split --config "$T/tr.json" -o "$T/cfgo5.tsv" "$R/real.tsv"
fails "missing config names it" 1 "$T/nope.json" fd-split --config "$T/nope.json" -o "$T/cfgo5.tsv" "$R/real.tsv"
no_file "no output after a bad config" "$T/cfgo5.tsv"

# Determinism, seeds, stdin, re-run over its own output.
fd-split -q --test 0.1 --fractions 0.2,0.5,1 "$R/real.tsv" >"$T/again.tsv"
ok "same seed: byte-identical" cmp -s "$T/real.tsv" "$T/again.tsv"
fd-split -q --test 0.1 --fractions 0.2,0.5,1 --seed 43 "$R/real.tsv" >"$T/s43.tsv"
ok "different seed: different split" bash -c "! cmp -s '$T/real.tsv' '$T/s43.tsv'"
fd-split -q --test 0.1 --fractions 0.2,0.5,1 - <"$R/real.tsv" >"$T/stdin.tsv"
ok "stdin gives the same split" cmp -s "$T/real.tsv" "$T/stdin.tsv"
fd-split -q --test 0.1 --fractions 0.2,0.5,1 "$T/real.tsv" >"$T/rerun.tsv"
ok "re-run over its own output replaces fold/in columns" cmp -s "$T/real.tsv" "$T/rerun.tsv"
fd-split -q --fractions 0.5 "$T/real.tsv" >"$T/rerun2.tsv"
is "re-run with other fractions drops the old in columns" \
	"$(head -1 "$T/rerun2.tsv" | tr '\t' ' ')" \
	"path source label group width height format bytes status fold in50"
# Row order within the file does not matter: same fold per row.
{ head -1 "$R/dff.tsv"; tail -n +2 "$R/dff.tsv" | sort -r; } >"$T/rev.tsv"
fd-split -q "$T/rev.tsv" | tail -n +2 | sort >"$T/rev_out.tsv"
fd-split -q "$R/dff.tsv" | tail -n +2 | sort >"$T/fwd_out.tsv"
ok "result does not depend on row order" cmp -s "$T/rev_out.tsv" "$T/fwd_out.tsv"

# Golden output of a small hand-written index (12 groups, a missing fake, a bad row).
{
	printf 'path\tsource\tlabel\tgroup\tstatus\n'
	for g in 01 02 03 04 05 06 07 08 09 10 11 12; do
		printf 'wiki/%s.jpg\twiki\t0\t%s\tok\n' $g $g
		printf 'sd/%s.jpg\tsd\t1\t%s\tok\n' $g $g
		[ $g = 05 ] || printf 'fs/%s.jpg\tfs\t1\t%s\t%s\n' $g $g "$([ $g = 09 ] && echo bad:truncated || echo ok)"
	done
} >"$T/small.tsv"
fd-split --folds 3 --test 0.25 --fractions 0.5,1 -o "$T/small_out.tsv" "$T/small.tsv" 2>"$T/small.err"
is "golden output (sha256)" "$(sha256sum <"$T/small_out.tsv" | cut -d' ' -f1)" \
	"b23f19fd452c930b4ea1c73a3c08c6e2466c50a385f5af85216f0586d81a0722"
like "balance table on stderr" "$(cat "$T/small.err")" "fd-split: all +test +3 +"
like "balance table counts excluded rows" "$(cat "$T/small.err")" "excluded \(status not ok\): 1 rows"
is "-q silences the balance table" "$(fd-split -q "$T/small.tsv" 2>&1 >/dev/null)" ""

# Bad input: exit 1, message naming file (and line or column), no output left.
cut -f1-3,5- "$R/real.tsv" >"$T/nogroup.tsv"
fails "missing column names file and column" 1 "^fd-split: '.*nogroup.tsv': missing column 'group'" \
	fd-split -o "$T/o1.tsv" "$T/nogroup.tsv"
no_file "missing column: no output" "$T/o1.tsv"
{ head -3 "$R/real.tsv"; printf 'x\ty\n'; tail -n +4 "$R/real.tsv"; } >"$T/fields.tsv"
fails "wrong field count names file and line" 1 "cannot read '.*fields.tsv': line 4: expected 9 fields, found 2" \
	fd-split -o "$T/o2.tsv" "$T/fields.tsv"
no_file "wrong field count: no output" "$T/o2.tsv"
head -8 "$T/small.tsv" >"$T/few.tsv"
fails "fewer groups than folds" 1 "^fd-split: '.*few.tsv': 3 groups with usable rows, fewer than 5 folds" \
	fd-split -o "$T/o3.tsv" "$T/few.tsv"
no_file "fewer groups: no output" "$T/o3.tsv"
fails "too few groups left after the test set" 1 "groups left after the test set, fewer than 5 folds" \
	fd-split --test 0.7 -o "$T/o3.tsv" "$T/small.tsv"
fails "a test share too small for any group" 1 "gives an empty test set" \
	fd-split --folds 3 --test 0.001 -o "$T/o3.tsv" "$T/small.tsv"
sed '3s/\t01\t/\t\t/' "$T/small.tsv" >"$T/emptygroup.tsv"
fails "empty group in a usable row names the line" 1 "'.*emptygroup.tsv': line 3: empty group" \
	fd-split --folds 3 -o "$T/o4.tsv" "$T/emptygroup.tsv"
no_file "empty group: no output" "$T/o4.tsv"
fails "missing input file" 1 "cannot read '$T/nope.tsv'" fd-split -o "$T/o5.tsv" "$T/nope.tsv"
printf 'path\tsource\tlabel\tgroup\tstatus\n' >"$T/header_only.tsv"
fails "header only: no groups" 1 "0 groups with usable rows" fd-split -o "$T/o5.tsv" "$T/header_only.tsv"
no_file "no output after failures" "$T/o5.tsv"

# Bad usage: exit 2, nothing written.
for args in "--folds 1" "--folds x" "--folds 101" "--test 1" "--test -0.1" "--test abc" \
	"--fractions 0.5,0.2" "--fractions 0,1" "--fractions 0.2,,1" "--fractions 1.5" \
	"--fractions 0.2,0.2" "--seed -1" "--bogus" "--folds"; do
	# shellcheck disable=SC2086
	fails "usage error: $args" 2 "^fd-split: " fd-split $args -o "$T/u.tsv" "$T/small.tsv"
done
fails "two input files" 2 "more than one input file" fd-split -o "$T/u.tsv" "$T/small.tsv" "$T/small.tsv"
no_file "usage errors: no output" "$T/u.tsv"
done_testing
