#!/bin/bash
# slurm.t: the pipelines under a real Slurm (Debian's slurm-wlm), LAUNCH='srun ...'.
# A one-node cluster on localhost is started in the test's scratch dir (munged,
# slurmctld, slurmd run by hand, no systemd or cgroups: proctrack/linuxproc,
# task/none; every state, key, socket and log file in $T/slurm; free ports) and
# always stopped on exit, by the PIDs started here. On fd-synth data at a tiny
# scale (24 groups, 2 folds, 24-px packs, SimpleCNN 2 epochs, one thread per job)
# phase 2A's geometry test (doc/shortcuts.md: model G trained on letterbox
# packs, C on matched, 2 folds each: 4 trainings; every run scored on its
# validation and training folds and the test set, G's validation folds also
# from the matched pack: 14 evaluations) is made with
# make -j2 LAUNCH='srun -n1 -c1 --quiet' and must equal the same make run
# locally byte for byte (checkpoints, preds, metrics, the reports; log.tsv and
# run.json but their timing fields); Slurm's job log (jobcomp/filetxt) shows the
# jobs ran there. Then, on G's runs (runs/simplecnn/in100-24-letterbox):
#  - a training cancelled by scancel before its first state: srun fails, make
#    fails, nothing is taken for a result, and the next make retrains that
#    fold (and only it);
#  - srun exiting 0 though the job did not finish (fd-train --stop-after:
#    exit 0 with a half-written run dir and its state; a launch that loses its
#    command): no run.json, make fails (RUN_RULE checks that run.json exists
#    after fd-train), make -q says not made; the next make resumes the stopped
#    run (its epoch 1 log line kept as written) or redoes the lost one, and the
#    results are the local ones again (resume is bit for bit);
#  - sbatch of the whole make (a 2-task allocation, srun --exact steps in it)
#    gives the local results too.
# The rules' targets are what the tools rename into place last (run.json,
# preds-*.tsv), so a job killed or lost half-way leaves no target.
. "$(dirname "$0")/lib.sh"
for p in munged mungekey slurmctld slurmd srun sinfo squeue scancel; do
	command -v "$p" >/dev/null || { echo "1..0 # SKIP slurm-wlm is not installed (no $p): make deps installs it"; exit 0; }
done
if [ ! -x "$BIN/fd-train" ] || [ ! -x "$BIN/fd-eval" ] || [ ! -x "$BIN/fd-report" ]; then
	echo "1..0 # SKIP fd-train, fd-eval and fd-report are not built yet"
	exit 0
fi
# a Slurm job around this test (or a user's settings) must not reach the test cluster's srun
unset $(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p') SQUEUE_FORMAT SINFO_FORMAT 2>/dev/null

# --- the cluster -----------------------------------------------------------------
S=$T/slurm
mkdir -p "$S/ctld" "$S/spool"
pids=""   # munged slurmctld slurmd, in start order
mkpid=""  # a make run in the background
# alive PID: running (a child that exited stays a zombie until waited for)
alive() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${s#Z}" = "$s" ]
}
# stop PID: SIGTERM, up to 10 s, then SIGKILL; reaped
stop() {
	local i=0
	kill -TERM "$1" 2>/dev/null
	while alive "$1" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
stop_cluster() {
	local i=0 p rev=""
	[ -n "$mkpid" ] && stop "$mkpid"
	if [ -n "$pids" ]; then
		# jobs first (their processes belong to slurmd's steps), then the daemons last to first
		scancel --quiet -u "$(id -un)" 2>/dev/null
		while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		for p in $pids; do rev="$p $rev"; done
		for p in $rev; do stop "$p"; done
	fi
	rm -rf "$T"
}
trap stop_cluster EXIT
trap 'exit 1' INT TERM HUP

mungekey -c -k "$S/munge.key" && chmod 600 "$S/munge.key" ||
	{ echo "Bail out! mungekey could not write $S/munge.key"; exit 1; }
# -f: the scratch dir is not world-searchable (munged wants that of a system socket dir)
munged -F -f --key-file="$S/munge.key" --socket="$S/munge.sock" --pid-file="$S/munged.pid" \
	--log-file="$S/munged.log" --seed-file="$S/munged.seed" </dev/null >"$S/munged.out" 2>&1 &
pids=$!
i=0
while [ ! -S "$S/munge.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# two free TCP ports: other clusters (another make test) may run on this machine
read -r cport dport < <("$PY" -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
export SLURM_CONF=$S/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=fdtest
SlurmctldHost=localhost
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge.sock
StateSaveLocation=$S/ctld
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$S/jobs.log
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SchedulerType=sched/builtin
ReturnToService=2
KillWait=2
NodeName=localhost CPUs=$(nproc) RealMemory=256 State=UNKNOWN
PartitionName=fd Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D </dev/null >"$S/slurmctld.out" 2>&1 &
pids="$pids $!"
slurmd -D -N localhost </dev/null >"$S/slurmd.out" 2>&1 &
pids="$pids $!"
i=0
while [ "$(sinfo -h -N -o %t 2>/dev/null)" != idle ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
state=$(sinfo -h -N -o %t 2>&1)
if [ "$state" = idle ]; then
	_report 0 "one-node cluster up: sinfo shows localhost idle ($((i / 10)).$((i % 10)) s)"
else
	_report 1 "one-node cluster up: sinfo shows localhost idle"
	echo "#   sinfo: $state"
	tail -n 5 "$S/munged.out" "$S/slurmctld.out" "$S/slurmd.out" 2>&1 | sed 's/^/#   /'
	done_testing
fi
is "srun runs a job" "$(srun -n1 -c1 --quiet sh -c 'echo "job $SLURM_JOB_ID on $SLURMD_NODENAME"' 2>&1 |
	sed 's/[0-9][0-9]*/N/')" "job N on localhost"
# slurm_jobs: "NAME STATE EXIT xCOUNT, ..." of the jobs Slurm ended since the
# last call, from its job log (jobcomp/filetxt; a job's name is its command's)
slurm_jobs() {
	local seen
	seen=$(cat "$S/seen" 2>/dev/null || echo 0)
	wc -l <"$S/jobs.log" >"$S/seen"
	tail -n +$((seen + 1)) "$S/jobs.log" |
		sed -n 's/.* Name=\([^ ]*\) .*JobState=\([^ ]*\) .* ExitCode=\([^ ]*\).*/\1 \2 \3/p' | sort | uniq -c |
		awk '{printf "%s%s %s %s x%s", (NR > 1 ? ", " : ""), $2, $3, $4, $1}'
}
# settle: until no job is left in squeue (Slurm logs a job as it completes)
settle() {
	local i=0
	while [ -n "$(squeue -h -o %i)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}
settle
slurm_jobs >/dev/null

# --- the pipeline ----------------------------------------------------------------
echo '{"epochs": 2, "batch_size": 8, "num_workers": 1, "scheduler": {"T_max": 2}, "early_stopping_patience": 0}' \
	>"$T/tiny.json"
W=$T/w
G=$W/phase2/2a-geometry.md
R=$W/runs/simplecnn/in100-24-letterbox   # G's runs (C's: in100-24-matched)
SRUN="srun -n1 -c1 --quiet"
MK=(make -C "$top" --no-print-directory FD="$BIN" WORK="$W" DATA="$W/data" SYNTH=1 SYNTH_GROUPS=24
	SYNTH_FLAGS="--fake-size 32 --real-width 32,40 --threads 1" FOLDS=2 FRAC=100 SIZE_HI=24
	THREADS=1 P2A_MODEL=simplecnn EXTRA_CONFIGS="$T/tiny.json")
mk() { "${MK[@]}" "$@"; }
# okmk "desc" make-args...: mk must succeed; on failure the end of its output
okmk() {
	local d=$1; shift
	if mk "$@" >"$T/mk.log" 2>&1; then _report 0 "$d"; else
		_report 1 "$d"; tail -20 "$T/mk.log" | sed 's/^/#   /'; fi
}
# same "desc": every file of the local run ($T/local) equals the current one
# under $W: byte for byte, log.tsv and run.json without their timing fields,
# and run.json's cmdline without the --resume that RUN_RULE adds when it
# resumes a run (the resumed run itself is bit for bit the uninterrupted one)
same() {
	local f n=0 bad=""
	untimed() {
		case $1 in
		*/log.tsv) cut -f1-7 "$1" ;;   # epoch ... lr; then seconds, images_per_s
		*/run.json) grep -v '_seconds"' "$1" | sed '/^  "cmdline": /s/ --resume -o / -o /' ;;
		*) cat "$1" ;;
		esac
	}
	for f in $(cd "$T/local" && find . -type f | sort); do
		n=$((n + 1))
		cmp -s <(untimed "$T/local/$f") <(untimed "$W/$f") 2>/dev/null || bad="$bad ${f#./}"
	done
	if [ $n -gt 20 ] && [ -z "$bad" ]; then _report 0 "$1 ($n files)"; else
		_report 1 "$1"; echo "#   $n files compared; differ or missing:$bad"; fi
}

okmk "local: make -j2 2a-geometry" -j2 "$G"
mkdir "$T/local"
cp -a "$W/runs" "$W/phase2" "$T/local/"
ok "local: the report" test -s "$G"
rm -rf "$W/runs" "$W/phase2"
okmk "Slurm: make -j2 2a-geometry LAUNCH='$SRUN'" -j2 "$G" LAUNCH="$SRUN"
is "Slurm: every srun in make's commands" "$(grep -E '/fd-(train|eval) ' "$T/mk.log" | grep -vc "^$SRUN ")" 0
settle
is "Slurm ran the 4 trainings and 14 evaluations" "$(slurm_jobs)" "fd-eval COMPLETED 0:0 x14, fd-train COMPLETED 0:0 x4"
same "Slurm = local: checkpoints, preds, metrics, reports"
ok "Slurm: then up to date" mk -q "$G" LAUNCH="$SRUN"

# --- a training cancelled under Slurm ------------------------------------------------
# hold: the job's command; a training waits stopped (as on a busy node) until
# cancelled, and never starts (it waits for the SIGTERM): scancel sends SIGCONT before SIGTERM, and a
# shell continued first would exec fd-train, which then saves its state on
# SIGTERM (as it should; it is resumed later) instead of being cancelled
# before its first state, the case tested here (seen under ASan's slower start)
cat >"$T/hold" <<EOF
#!/bin/sh
case \$1 in */fd-train) echo "\$SLURM_JOB_ID" >"$T/held.tmp" && mv "$T/held.tmp" "$T/held"; kill -STOP \$\$; while :; do sleep 1; done ;; esac
exec "\$@"
EOF
chmod +x "$T/hold"
rm -rf "$R/fold1" "$W/phase2"
mk -j2 "$G" LAUNCH="$SRUN $T/hold" >"$T/cancel.log" 2>&1 &
mkpid=$!
i=0
while [ ! -e "$T/held" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
# the held training's own job (with -j2 an evaluation may be running beside it)
job=$(cat "$T/held" 2>/dev/null)
like "a training runs under Slurm" "$job" "^[0-9]+$"
ok "... and Slurm lists its job as running" sh -c "squeue -h -t R -o %i | grep -qx '$job'"
[ -n "$job" ] || stop "$mkpid"
ok "scancel it" scancel "$job"
wait "$mkpid"
rc=$?
mkpid=""
is "cancelled: make fails" "$rc" 2
like "cancelled: srun says so" "$(cat "$T/cancel.log")" "CANCELLED|Terminated|Killed"
settle
like "cancelled: the job's end in Slurm's log" "$(slurm_jobs)" "^hold CANCELLED [0-9:]+ x1$"
ok "cancelled: no run.json" test ! -e "$R/fold1/run.json"
ok "cancelled: no state saved (so the next make retrains)" test ! -e "$R/fold1/state.safetensors"
is "cancelled: nothing evaluated, no report" "$(ls "$R/fold1"/preds-* "$G" 2>/dev/null)" ""
is "cancelled: make -q: not made" "$(mk -q "$G" >/dev/null 2>&1; echo $?)" 1
okmk "cancelled: the next make succeeds" -j2 "$G" LAUNCH="$SRUN"
settle
is "cancelled: it retrains that fold only (4 evaluations: val, train, test, matched)" "$(slurm_jobs)" \
	"fd-eval COMPLETED 0:0 x4, fd-train COMPLETED 0:0 x1"
like "cancelled: retrained from scratch (run.json's cmdline)" "$(grep '^  "cmdline": ' "$R/fold1/run.json")" \
	'fd-train .* -o [^ ]*/fold1"'
is "cancelled: not resumed" "$(grep -c -- '--resume' "$R/fold1/run.json")" 0
same "cancelled: the results are the local ones"

# --- srun exits 0, the job did not finish -----------------------------------------------
# fd-train --stop-after 8: exits 0 after 8 steps (one 6-step epoch and 2 more),
# its run dir half-written: log.tsv, best.safetensors of epoch 1, state, no run.json
# (the step counts hold for letterbox and matched packs alike: same rows)
rm -rf "$R/fold0" "$W/phase2"
mk -j2 "$G" LAUNCH="$SRUN" TRAIN_FLAGS="--set threads=1 --stop-after 8" >"$T/stop.log" 2>&1
rc=$?
settle
like "stopped: srun exited 0" "$(slurm_jobs)" "fd-train COMPLETED 0:0 x1"
is "stopped: a half-written run: one epoch logged" "$(tail -n +2 "$R/fold0/log.tsv" | cut -f1)" 1
ok "stopped: epoch 1's best.safetensors" test -s "$R/fold0/best.safetensors"
ok "stopped: its state saved" test -s "$R/fold0/state.safetensors"
# epoch 1's log line with its timing fields: a resume keeps it (it truncates
# log.tsv to the state's epochs), a retrain would measure it again
ep1=$(sed -n 2p "$R/fold0/log.tsv")
ok "stopped: no run.json" test ! -e "$R/fold0/run.json"
# make would take a recipe that exits 0 as having made its target for the rest
# of that invocation (fd-eval would score the half-trained best.safetensors);
# RUN_RULE checks that fd-train's run.json exists (a 'test -f' line after fd-train's), so that
# make fails here and the next make resumes the run (below).
[ "$rc" -ne 0 ] && [ -z "$(ls "$R/fold0"/preds-* "$G" 2>/dev/null)" ]
is "stopped: that make fails, nothing evaluated (make exited $rc)" "$?" 0
is "stopped: make -q: not made" "$(mk -q "$G" >/dev/null 2>&1; echo $?)" 1
okmk "stopped: the next make succeeds" -j2 "$G" LAUNCH="$SRUN"
settle
is "stopped: it trains that fold only (4 evaluations)" "$(slurm_jobs)" "fd-eval COMPLETED 0:0 x4, fd-train COMPLETED 0:0 x1"
is "stopped: resumed, not retrained: epoch 1's log line as the stopped job wrote it" \
	"$(sed -n 2p "$R/fold0/log.tsv")" "${ep1:-(no epoch 1 line after the stop)}"
like "stopped: resumed: run.json's cmdline has --resume" "$(grep '^  "cmdline": ' "$R/fold0/run.json")" \
	'fd-train .* --resume -o [^ ]*/fold0"'
same "stopped: the results are the local ones"

# a launch that loses its command (the job runs, nothing of the tool, exit 0)
printf '#!/bin/sh\nexit 0\n' >"$T/lost"
chmod +x "$T/lost"
rm -rf "$R/fold1" "$W/phase2"
mk -j2 "$G" LAUNCH="$SRUN $T/lost" >"$T/lost.log" 2>&1
rc=$?
settle
# (the training's job only: RUN_RULE's run.json check fails that recipe, so no
# evaluation of the lost run is started)
like "lost: srun exited 0" "$(slurm_jobs)" "^lost COMPLETED 0:0 x1$"
is "lost: make fails" "$rc" 2
is "lost: no run dir, no report" "$(ls -d "$R/fold1" "$G" 2>/dev/null)" ""
is "lost: make -q: not made" "$(mk -q "$G" >/dev/null 2>&1; echo $?)" 1
okmk "lost: the next make succeeds" -j2 "$G" LAUNCH="$SRUN"
settle
is "lost: it redoes that fold only" "$(slurm_jobs)" "fd-eval COMPLETED 0:0 x4, fd-train COMPLETED 0:0 x1"
same "lost: the results are the local ones"

# --- sbatch of the whole make: its sruns are steps of the batch job's allocation ---------
printf '#!/bin/sh\nexec "$@"\n' >"$T/batch"
chmod +x "$T/batch"
rm -rf "$W/runs" "$W/phase2"
ok "sbatch --wait: make -j2 in a 2-task allocation, LAUNCH='srun --exact ...'" \
	sbatch --wait --quiet --ntasks=2 --cpus-per-task=1 --output="$T/batch.out" "$T/batch" \
	"${MK[@]}" -j2 "$G" LAUNCH="srun --nodes=1 --ntasks=1 --cpus-per-task=1 --exact --quiet"
is "sbatch: 18 srun steps" "$(grep -cE '^srun .*/fd-(train|eval) ' "$T/batch.out")" 18
settle
is "sbatch: one job" "$(slurm_jobs)" "batch COMPLETED 0:0 x1"
same "sbatch: the results are the local ones"
ok "then up to date" mk -q "$G"
done_testing
