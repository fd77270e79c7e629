#!/bin/bash
# signal.t: a tool killed by SIGTERM or SIGINT half-way leaves neither its
# output nor a temporary behind, and dies of the signal.
. "$(dirname "$0")/lib.sh"

fd-synth -q -o "$T/big" --groups 3000 --seed 5 &
pid=$!
sleep 1
kill -TERM $pid
wait $pid
is "fd-synth dies of SIGTERM" "$?" 143
no_file "fd-synth leaves no data set" "$T/big"
is "fd-synth leaves no temporary tree" "$(ls "$T" | grep -c 'big.tmp')" 0

ok "small data set" fd-synth -q -o "$T/d" --groups 300 --seed 5
fd-index -q --root "$T/d" | fd-split -q --test 0.1 >"$T/split.tsv"
ok "split made" test -s "$T/split.tsv"
for sig in TERM INT; do
	fd-pack -q --threads 1 --exact --root "$T/d" --size 320 -o "$T/p.safetensors" "$T/split.tsv" &
	pid=$!
	sleep 0.7
	kill -$sig $pid
	wait $pid
	rc=$?
	like "fd-pack dies of SIG$sig (exit $rc)" "$rc" '^(130|143)$'
	no_file "fd-pack SIG$sig: no pack" "$T/p.safetensors"
	no_file "fd-pack SIG$sig: no pack TSV" "$T/p.tsv"
done
done_testing
