#!/bin/bash
# probe_dataloss.t: the data-loss cases of issue 16's hostile-input probe. No
# tool writes over one of its inputs (or a sidecar), a finished or foreign
# run directory, another writer's output, a device, FIFO or symlink; a
# killed writer's temporaries and lock are cleaned by the next one; the
# pipelines never delete what the user passed in.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
fd-synth -q -o D --groups 12 --fake-size 40 --real-width 40,48 --seed 5 &&
	fd-index -q --root D -o idx.tsv && fd-split -q --folds 2 --test 0.2 -o split.tsv idx.tsv &&
	fd-pack -q --root D --size 24 -o pack.safetensors split.tsv || { echo "Bail out! cannot make the pack"; exit 1; }
cat >cfg.json <<'J'
{"model": "simplecnn", "epochs": 1, "batch_size": 16, "num_workers": 1, "optimizer": {"lr": 0.001}}
J
C="--pack pack.safetensors --fold 0 --config $top/configs/shared.json --config cfg.json --threads 1"
fd-train -q $C -o run0 || { echo "Bail out! cannot train"; exit 1; }
sum() { sha256sum "$@" | cut -c1-64 | tr '\n' ' '; }
before=$(sum split.tsv pack.safetensors pack.tsv run0/best.safetensors)
nolock() { # desc path: no lock beside path
	if [ -e "$2.lock" ]; then _report 1 "$1"; echo "#   '$2.lock' exists"; else _report 0 "$1"; fi
}

# --- 1. an output that is an input (or its sidecar) is refused before reading
cp split.tsv x.tsv
fails "fd-pack -o x.safetensors x.tsv: sidecar is the input" 2 "output 'x.tsv' is the input 'x.tsv'" \
	fd-pack -q --root D --size 24 -o x.safetensors x.tsv
is "x.tsv untouched" "$(sum x.tsv)" "$(sum split.tsv)"
no_file "no x.safetensors" x.safetensors
nolock "no lock left" x.safetensors
fails "fd-eval -o pack.tsv: a pack's sidecar" 2 "output 'pack.tsv' is the input" \
	fd-eval --model run0/best.safetensors --pack pack.safetensors --only fold=0 -o pack.tsv
fails "fd-eval -o MODEL" 2 "output 'run0/best.safetensors' is the input" \
	fd-eval --model run0/best.safetensors --pack pack.safetensors --only fold=0 -o run0/best.safetensors
fails "fd-eval -o through another name of the model" 2 "is the input" \
	fd-eval --model run0/best.safetensors --pack pack.safetensors --only fold=0 -o ./run0/../run0/best.safetensors
fails "fd-eval --metrics X -o X" 2 "output 'm.tsv' is given twice" \
	fd-eval --model run0/best.safetensors --pack pack.safetensors --only fold=0 --metrics m.tsv -o m.tsv
no_file "no m.tsv" m.tsv
ok "fd-eval into the run" fd-eval -q --model run0/best.safetensors --pack pack.safetensors --only fold=0 -o run0/preds-val.tsv
cp run0/preds-val.tsv pv.tsv
fails "fd-report -o a run's preds-val.tsv" 2 "inside the input directory 'run0'" \
	fd-report -q --section phase1 -o run0/preds-val.tsv run0
is "preds-val.tsv untouched" "$(sum run0/preds-val.tsv)" "$(sum pv.tsv)"
fails "fd-split -o its input" 2 "is the input" fd-split -q --folds 2 -o x.tsv x.tsv
fails "fd-split -o a hard link of its input" 2 "is the input" sh -c 'ln x.tsv hl.tsv && fd-split -q --folds 2 -o hl.tsv x.tsv'
fails "fd-index -o its sources table" 2 "is the input" sh -c "cp $top/configs/sources.tsv s.tsv && fd-index -q --root D --sources s.tsv -o s.tsv"
is "s.tsv untouched" "$(sum s.tsv)" "$(sum $top/configs/sources.tsv)"
fails "fd-st -o its input" 2 "is the input" fd-st -o pack.safetensors pack.safetensors
fails "fd-train -o its pack" 2 "is the input" fd-train -q $C -o pack.safetensors
is "inputs untouched" "$(sum split.tsv pack.safetensors pack.tsv run0/best.safetensors)" "$before"

# --- 2. a run directory holding a run (or anything else) is refused
rm run0/state.safetensors
fails "fd-train over a finished run without its state" 1 "holds a run already" fd-train -q $C -o run0
fails "... nor with --resume" 1 "not its state.safetensors: it cannot be resumed" fd-train -q $C --resume -o run0
ok "run.json kept" test -s run0/run.json
mkdir other && echo keep >other/notes.txt
fails "fd-train into a directory of unrelated files" 1 "holds 'notes.txt', which is not part of a run" fd-train -q $C -o other
is "notes.txt kept, nothing added" "$(ls other)" notes.txt
ok "an empty directory is fine" sh -c "mkdir empty && fd-train -q $C -o empty && test -s empty/run.json"

# --- 3. one writer per output: a lock beside it for the writer's life
sleep 1000 & held=$!
echo $held >busy.safetensors.lock
fails "fd-pack while another holds the lock" 1 "'busy.safetensors.lock' is held by process $held" \
	fd-pack -q --root D --size 24 -o busy.safetensors split.tsv
no_file "no busy.safetensors" busy.safetensors
echo $held >R2.lock
fails "fd-train while another trains into the same run" 1 "'R2.lock' is held by process $held" fd-train -q $C -o R2
no_file "no R2" R2
kill $held; wait $held 2>/dev/null
fails "a dead writer's lock is taken over, with a note" 0 "took over 'R2.lock' from process $held" fd-train -q $C -o R2
nolock "the lock is gone after the run" R2
fd-pack -q --root D --size 24 -o two.safetensors split.tsv 2>p1.err & p1=$!
fd-pack -q --root D --size 24 -o two.safetensors split.tsv 2>p2.err & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
ok "two fd-pack on one output: one of them succeeds" test $((r1 == 0 || r2 == 0)) = 1
if [ $r1 -ne 0 ] || [ $r2 -ne 0 ]; then
	like "... the other names the lock" "$(cat p1.err p2.err)" "'two.safetensors.lock' is held by process"
fi
is "tensor and sidecar agree" "$(fd-st two.safetensors | awk -F'\t' '$1 == "label" {print $3}')" "$(($(wc -l <two.tsv) - 1))"
nolock "no lock left" two.safetensors
# the lock is created with its holder's PID in it (hard link of a written
# temporary), so a second writer never finds it empty: 20 races of two writers
bad=0 races=0
for i in $(seq 20); do
	fd-split -q --folds 2 -o race.tsv split.tsv 2>r1.err & a=$!
	fd-split -q --folds 2 -o race.tsv split.tsv 2>r2.err & b=$!
	wait $a; ra=$?; wait $b; rb=$?
	races=$((races + 1))
	for r in "$ra:r1.err" "$rb:r2.err"; do
		if [ "${r%%:*}" -ne 0 ] && ! grep -q "'race.tsv.lock' is held by process" "${r#*:}"; then
			bad=$((bad + 1)); sed 's/^/#   /' "${r#*:}"
		fi
	done
done
ok "20 races of two writers ran" test "$races" -eq 20
ok "... every refused writer names the lock's holder" test "$bad" -eq 0
nolock "... and no lock is left" race.tsv
is "... and no temporary of a lock" "$(ls -a | grep -c '\.lock\.[0-9]*\.new$')" 0

# --- 4. devices, FIFOs and symlinks are written through, never replaced
ok "-o /dev/null writes to the device" fd-split -q --folds 2 -o /dev/null split.tsv
ok "/dev/null is still a device" test -c /dev/null
fd-split -q --folds 2 -o s2.tsv split.tsv
mkfifo ff
cat ff >ff.out & rd=$!
ok "-o FIFO writes into the FIFO" timeout 20 fd-split -q --folds 2 -o ff split.tsv
wait $rd
ok "the FIFO stays a FIFO" test -p ff
is "the reader got the split" "$(sum ff.out)" "$(sum s2.tsv)"
mkfifo ff.safetensors
fails "a pack (written through a mapping) into a FIFO is refused" 1 "written whole to a regular file" \
	timeout 20 fd-pack -q --root D --size 24 -o ff.safetensors split.tsv
ok "the FIFO stays" test -p ff.safetensors
no_file "no sidecar" ff.tsv
echo old >tgt.tsv && ln -s tgt.tsv link.tsv
ok "-o symlink" fd-split -q --folds 2 -o link.tsv split.tsv
ok "the link stays a link" test -L link.tsv
is "its target got the output" "$(sum tgt.tsv)" "$(sum s2.tsv)"
ln -s nowhere/x.tsv dangling.tsv
fails "-o a dangling symlink is refused" 1 "symbolic link to a missing file" fd-split -q --folds 2 -o dangling.tsv split.tsv
ok "the dangling link stays" test -L dangling.tsv

# --- kill -9 leaves temporaries; the next writer of the target removes them
sh -c 'echo $$; exec sleep 0' >dead.pid; dead=$(cat dead.pid)
: >.s.tsv.tmp.$dead.AbCdEf
: >.s.tsv.tmp.$$.AbCdEf
ok "rewrite s.tsv" fd-split -q --folds 2 -o s.tsv split.tsv
ok "a dead writer's temporary is removed" test ! -e .s.tsv.tmp.$dead.AbCdEf
ok "a live writer's temporary is kept" test -e .s.tsv.tmp.$$.AbCdEf

# --- --help into a full disk fails
if [ -w /dev/full ]; then
	for t in fd-split fd-pack fd-train; do
		fails "$t --help > /dev/full" 1 "cannot write standard output" sh -c "$t --help >/dev/full"
	done
fi

# --- 5, 6. the pipelines: SYNTH from the environment cannot delete DATA;
# an interrupted run is resumed, not deleted
mkdir -p ud && echo precious >ud/keep
plan=$(SYNTH=1 make -n -s -C "$top" -f Makefile "$T/w/index.tsv" DATA="$T/ud" WORK="$T/w" FD=/nonexistent 2>&1)
if printf '%s' "$plan" | grep -q "rm -rf $T/ud"; then _report 1 "SYNTH in the environment plans rm -rf DATA"; else _report 0 "SYNTH in the environment does not plan rm -rf DATA"; fi
mkdir -p fake && cat >fake/fd-train <<'S' && chmod +x fake/fd-train
#!/bin/sh
# records its arguments, then "finishes" the run as fd-train would
echo "$*" >>"$(dirname "$0")/calls"
for d; do :; done
mkdir -p "$d" && echo done >"$d/run.json"
S
R=$T/w/runs/resnet18/in20-224-center
mk() { make -s -C "$top" -f Makefile -o "$T/w/packs/in20-224-center.safetensors" "$R/fold$1/run.json" \
	DATA="$T/ud" WORK="$T/w" FD="$T/fake" >/dev/null 2>&1; }
mkdir -p "$R/fold0" "$R/fold1" w/packs && touch w/packs/in20-224-center.safetensors
echo s >"$R/fold0/state.safetensors"; echo l >"$R/fold0/log.tsv"
ok "make: an interrupted run (state, no run.json)" mk 0
like "... is resumed" "$(cat fake/calls)" "--fold 0 .*--resume -o $R/fold0"
is "... and its state kept" "$(cat "$R/fold0/state.safetensors")" s
echo l >"$R/fold1/log.tsv"
ok "make: a run killed before its first state" mk 1
like "... is restarted" "$(tail -1 fake/calls)" "--fold 1 .* -o $R/fold1$"
ok "... from an empty directory" test ! -e "$R/fold1/log.tsv"
mkdir -p "$R/fold2" && echo s >"$R/fold2/state.safetensors" && echo "configs/shared.json other.json" >"$R/fold2.configs"
ok "make: an interrupted run trained with another list of configs" mk 2
like "... is restarted, not resumed" "$(tail -1 fake/calls)" "--fold 2 .* -o $R/fold2$"
ok "... from an empty directory" test ! -e "$R/fold2/state.safetensors"
is "... and RUNDIR.configs names the list it ran with" "$(cat "$R/fold2.configs")" "configs/shared.json configs/models/resnet18.json"
ok "DATA untouched" test -s ud/keep

done_testing
