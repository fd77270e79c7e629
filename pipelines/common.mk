# common.mk: variables and rule makers shared by every phase, the data stages
# and make demo. doc/pipelines.md describes the graph; override any variable on
# the command line: make phase2 DATA=/data/dff WORK=/scratch/fd FOLDS=5 -j8
#   DATA    data set root (folders wiki/ text2img/ inpainting/ insight/)
#   WORK    artefact folder (index, split, packs, runs, reports)
#   DEVICE  cpu or cuda[:N] (passed to fd-train and fd-eval as --device unless cpu)
#   FOLDS   number of cross-validation folds
#   LAUNCH  prefix for every fd-train and fd-eval command (srun --gres=gpu:1 -c8)
.DELETE_ON_ERROR:
WORK    ?= work
DATA    ?=
DEVICE  ?= cpu
FOLDS   ?= 5
LAUNCH  ?=
# seed of fd-synth's data (make demo, tests) only: the split's seed and test
# share are configs/shared.json's seed and test_ratio (fd-split --config)
SEED    ?= 42
FD      ?= $(CURDIR)/bin
CONF    ?= configs
# threads per training and evaluation job (empty: the tools' default, all cores)
THREADS ?=
# the plan's subsample for phases 1-3 (percent; fd-split's in20 column)
FRAC    ?= 20
SIZE_LO ?= 128
SIZE_HI ?= 224
# configs appended to every training run (make demo: configs/demo.json)
EXTRA_CONFIGS ?=
FAKE_SOURCES  ?= text2img inpainting insight
# the file fd-train renames into its run directory last (the run's target)
RUN_DONE ?= run.json
# images in which fd-facecrop found no face: keep (packed with the centre crop
# under the face geometry, as everything else elsewhere) or drop (left out of
# every condition's pack: all packs read faces.tsv with --only face_note=ok, and
# packs and runs get the suffix -faceonly so neither choice reuses the other's)
NOFACE  ?= keep
# set by make demo: DATA is made by fd-synth. Only make's command line may set
# it (make demo does): a SYNTH in the environment must never make a rule
# replace the user's DATA.
ifneq ($(origin SYNTH),command line)
override SYNTH :=
endif
SYNTH_GROUPS ?= 100
SYNTH_CUES   ?= aspect=1,cast=0.5,texture=0.5
SYNTH_FLAGS  ?=

SHARED := $(CONF)/shared.json
comma := ,
empty :=
space := $(empty) $(empty)
FOLD_IDS := $(shell seq 0 $$(($(FOLDS) - 1)))
# the training folds of validation fold $1, comma separated (fd-eval --only)
train_folds = $(subst $(space),$(comma),$(filter-out $1,$(FOLD_IDS)))
DEVICE_FLAGS = $(if $(filter-out cpu,$(DEVICE)),--device $(DEVICE))
TRAIN_FLAGS = $(DEVICE_FLAGS) $(if $(THREADS),--set threads=$(THREADS))
EVAL_FLAGS = $(DEVICE_FLAGS) $(if $(THREADS),--threads $(THREADS))

# --- data: index, split, face boxes, packs -----------------------------------
DATA_DEP := $(if $(SYNTH),$(DATA)/cues.tsv)

ifneq ($(SYNTH),)
$(DATA)/cues.tsv:
	@mkdir -p $(dir $(DATA))
	$(if $(filter $(abspath $(WORK))/%,$(abspath $(DATA))),rm -rf $(DATA),@test ! -e $(DATA) || { echo "make: DATA '$(DATA)' exists and is not under WORK: not replacing it with fd-synth data" >&2; exit 2; })
	$(FD)/fd-synth -q -o $(DATA) --groups $(SYNTH_GROUPS) --seed $(SEED) --cues $(SYNTH_CUES) $(SYNTH_FLAGS)
endif

$(WORK)/index.tsv: $(DATA_DEP) $(CONF)/sources.tsv
	@test -n "$(DATA)" || { echo "make: set DATA to the data set root (make phase1 DATA=/data/dff)" >&2; exit 2; }
	@mkdir -p $(@D)
	$(FD)/fd-index --stats --root $(DATA) --sources $(CONF)/sources.tsv -o $@

$(WORK)/split.tsv: $(WORK)/index.tsv $(SHARED)
	$(FD)/fd-split -q --config $(SHARED) --folds $(FOLDS) --fractions 0.2,0.5,1 -o $@ $<

$(WORK)/faces.tsv: $(WORK)/split.tsv
	$(FD)/fd-facecrop --root $(DATA) -o $@ $<

$(if $(filter-out keep drop,$(NOFACE)),$(error NOFACE must be keep or drop, not '$(NOFACE)'))
NOFACE_DROP := $(filter drop,$(NOFACE))
NOFACE_TAG := $(if $(NOFACE_DROP),-faceonly)

# $(call pack,FRAC,SIZE,GEOMETRY): the pack file (rules made on first use)
pack = $(call need_pack,$1,$2,$3)$(WORK)/packs/in$1-$2-$3$(NOFACE_TAG).safetensors
need_pack = $(if $(PACK_$1_$2_$3),,$(eval PACK_$1_$2_$3 := 1)$(eval $(call PACK_RULE,$1,$2,$3)))
define PACK_RULE
$(WORK)/packs/in$1-$2-$3$(NOFACE_TAG).safetensors: $(WORK)/$(if $(filter face,$3)$(NOFACE_DROP),faces,split).tsv
	@mkdir -p $$(@D)
	$(FD)/fd-pack -q --root $(DATA) --size $2 --geometry $3 --only in$1=1 $(if $(NOFACE_DROP),--only face_note=ok) -o $$@ $$<
endef

# --- runs: one model x one setting x one fold ----------------------------------
# A setting is FRAC-SIZE-GEOMETRY[-VARIANT]; VARIANT names a config in $(CONF)
# (augment, normalize-real-train, holdout-insight ...) added to shared.json and
# the model's config. Runs are shared: the 224-centre ResNet18 run serves 2A,
# 2B, 2C and 2D alike.
setting = in$2-$3-$4$(if $5,-$5)
rundir = $(WORK)/runs/$1/$(call setting,$1,$2,$3,$4,$5)$(NOFACE_TAG)/fold$6
run_configs = $(SHARED) $(CONF)/models/$1.json $(if $2,$(CONF)/$2.json) $(EXTRA_CONFIGS)

# $(call runs,MODEL,FRAC,SIZE,GEOMETRY,VARIANT): run dirs over all folds
runs = $(foreach k,$(FOLD_IDS),$(call need_run,$1,$2,$3,$4,$5,$k)$(call rundir,$1,$2,$3,$4,$5,$k))
need_run = $(if $(RUN_$1_$2_$3_$4_$5_$6),,$(eval RUN_$1_$2_$3_$4_$5_$6 := 1)$(eval $(call RUN_RULE,$1,$2,$3,$4,$5,$6,$(call rundir,$1,$2,$3,$4,$5,$6),$(call pack,$2,$3,$4),$(call configs_changed,$(call rundir,$1,$2,$3,$4,$5,$6),$(call run_configs,$1,$5)))))
# 1 model 2 frac 3 size 4 geometry 5 variant 6 fold 7 run dir 8 pack
# 9 "changed" when the run was trained with another list of configs

# Which config files a run is trained with is an input of it too, not only
# their mtimes: RUNDIR.configs (beside the run directory, which a restart
# removes) holds the list, written by the run's recipe just before fd-train.
# When the list a make would use differs (another EXTRA_CONFIGS, such as
# {"init": "scratch"}, or a changed variant), CONFIGS_CHANGED makes the run
# out of date, and its recipe restarts it rather than resuming. A run without
# the file (made before it existed) is taken to have used the current list.
configs_changed = $(shell f='$1.configs'; [ ! -e "$$f" ] || [ "$$(cat "$$f")" = '$(strip $2)' ] || echo changed)
.PHONY: CONFIGS_CHANGED
CONFIGS_CHANGED:
# A run interrupted after a state was saved (state.safetensors, no run.json:
# a preempted job, a ^C) is resumed bit for bit; only a run without a state
# (killed in its first epoch), one whose list of configs changed, or an
# outdated one (run.json older than its pack or configs) is restarted. Either
# way only $(WORK)/runs/... is removed.
define RUN_RULE
$7/$(RUN_DONE): $8 $(call run_configs,$1,$5) $(if $9,CONFIGS_CHANGED)
	@mkdir -p $$(dir $7)
	[ -e $7/state.safetensors ] && [ ! -e $7/$(RUN_DONE) ] && { [ ! -e $7.configs ] || [ "$$$$(cat $7.configs)" = '$(strip $(call run_configs,$1,$5))' ]; } || rm -rf $7
	@printf '%s\n' '$(strip $(call run_configs,$1,$5))' >$7.configs.tmp && mv $7.configs.tmp $7.configs
	$(LAUNCH) $(FD)/fd-train --pack $8 --fold $6 $(addprefix --config ,$(call run_configs,$1,$5)) $(TRAIN_FLAGS) $$$$(test -e $7/state.safetensors && echo --resume) -o $7
	@test -f $$@ || { echo "make: $$@ is missing after fd-train (the launch exited 0 without a finished run)" >&2; exit 1; }
$7/preds-val.tsv: $7/$(RUN_DONE) $8
	$(LAUNCH) $(FD)/fd-eval $(EVAL_FLAGS) --model $7/best.safetensors --pack $8 --only fold=$6 --metrics $7/metrics-val.tsv -o $$@
$7/preds-train.tsv: $7/$(RUN_DONE) $8
	$(LAUNCH) $(FD)/fd-eval $(EVAL_FLAGS) --model $7/best.safetensors --pack $8 --only fold=$(call train_folds,$6) --metrics $7/metrics-train.tsv -o $$@
$7/preds-test.tsv: $7/$(RUN_DONE) $8
	$(LAUNCH) $(FD)/fd-eval $(EVAL_FLAGS) --model $7/best.safetensors --pack $8 --only fold=test --metrics $7/metrics-test.tsv -o $$@
endef

# $(call evals,MODEL,FRAC,SIZE,GEOMETRY,VARIANT,EVAL_GEOMETRY): the runs'
# validation folds scored from a pack of another geometry -> preds-<geometry>.tsv
evals = $(foreach k,$(FOLD_IDS),$(call need_eval,$1,$2,$3,$4,$5,$k,$6)$(call rundir,$1,$2,$3,$4,$5,$k)/preds-$6.tsv)
need_eval = $(if $(EVAL_$1_$2_$3_$4_$5_$6_$7),,$(eval EVAL_$1_$2_$3_$4_$5_$6_$7 := 1)$(call need_run,$1,$2,$3,$4,$5,$6)$(eval $(call EVAL_RULE,$6,$(call rundir,$1,$2,$3,$4,$5,$6),$(call pack,$2,$3,$7),$7)))
define EVAL_RULE
$2/preds-$4.tsv: $2/$(RUN_DONE) $3
	$(LAUNCH) $(FD)/fd-eval $(EVAL_FLAGS) --model $2/best.safetensors --pack $3 --only fold=$1 --metrics $2/metrics-$4.tsv -o $$@
endef

# $(call fulls,MODEL,FRAC,SIZE,GEOMETRY,VARIANT): the runs' checkpoints scored on
# the whole validation fold K of the in100 pack of the same size and geometry ->
# preds-full.tsv (4A: every fraction on the same rows)
fulls = $(foreach k,$(FOLD_IDS),$(call need_full,$1,$2,$3,$4,$5,$k)$(call rundir,$1,$2,$3,$4,$5,$k)/preds-full.tsv)
need_full = $(if $(FULL_$1_$2_$3_$4_$5_$6),,$(eval FULL_$1_$2_$3_$4_$5_$6 := 1)$(call need_run,$1,$2,$3,$4,$5,$6)$(eval $(call EVAL_RULE,$6,$(call rundir,$1,$2,$3,$4,$5,$6),$(call pack,100,$3,$4),full)))

# fd-report's inputs: LABEL=RUNDIR words -> the files they read (every report
# shows the test set: preds-test.tsv)
labelled = $(addprefix $1=,$2)
report_deps = $(foreach w,$1,$(foreach f,val train test,$(lastword $(subst =, ,$w))/preds-$f.tsv))
REPORT = $(FD)/fd-report -q --config $(SHARED) $(addprefix --config ,$(EXTRA_CONFIGS))

# --- make report: every phase's Markdown in one file ------------------------------
# (the phase files add their reports to REPORTS)
REPORTS :=

# --- make demo: fd-synth data through every phase, scaled down -----------------
DEMO_WORK ?= $(WORK)/demo
# Phase 2 runs simplecnn only; 2A uses tests/tools/demo.t's recipe (80 groups, no colour
# cast, 20 epochs at lr 3e-3 from configs/demo.json), so the demo's report
# shows the planted aspect-ratio and texture cues that test asserts. Grad-CAM
# at earlier layers than the default last stage, which is 1x1 or 2x2 at 24-32 px
# (simplecnn's second block, 16x16 at 32 px; the resnets' layer2, 4x4).
DEMO_VARS ?= WORK=$(DEMO_WORK) DATA=$(DEMO_WORK)/data SYNTH=1 SYNTH_GROUPS=80 SYNTH_CUES=aspect=1,cast=0,texture=1 \
	SYNTH_FLAGS="--fake-size 64 --real-width 64,96" FOLDS=2 FRAC=100 SIZE_LO=24 SIZE_HI=32 \
	EXTRA_CONFIGS=$(CONF)/demo.json THREADS=1 P2A_MODEL=simplecnn P2_MODELS=simplecnn \
	P3_MODELS="resnet34" P4_MODELS="simplecnn" \
	P4B_GRADCAM_LAYER_simplecnn=features.6 P4B_GRADCAM_LAYER_resnet18=layer2 P4B_GRADCAM_LAYER_resnet34=layer2

DEMO_JOBS ?= 2

demo-run:
	$(MAKE) -j$(DEMO_JOBS) -f $(firstword $(MAKEFILE_LIST)) report $(DEMO_VARS)
	@echo
	@echo "demo: report in $(DEMO_WORK)/report.md, HTML pages in $(DEMO_WORK)/html/index.html"

.PHONY: demo-run
