# phase4.mk: phase 4 of PLAN.md.
# 4A data quantity scaling of the chosen models at the phase-2 choices on the
# nested subsamples in20 in50 in100, every fraction scored on the same rows (the
# full validation fold of the in100 pack, eval "full", and the test set), so the
# comparison is paired.
# 4B the final models: the P4B_TOP models of phases 1 and 3 (at the phase-2
# choices) with the highest mean validation AUC, chosen by fd-report --section
# top into top.json with top.mk beside it (P4B_TOP_MODELS, for make's include,
# like best.mk; the test set makes no choice), or the models named by
# P4B_MODELS="..." instead; trained on the full data (in100) at the phase-2
# choices, all folds, each fold model scored on the test set; fd-report
# --section 4b-final: per-source test metrics of the fold ensemble, pairwise
# DeLong tests with Holm, the hard examples (4b-final.hard.tsv) and confidence
# histograms (4b-final.confidence.tsv).
# Grad-CAM (fd-gradcam) of each 4B model's fold-0 checkpoint, and of the
# phase-1 models', on the P4B_GRADCAM_N most confident test rows of each
# category (true real, true fake, false positive, false negative) of that
# checkpoint's own preds-test.tsv: $(P4)/gradcam/MODEL, $(P1)/gradcam/MODEL.
# Then make report: every phase's Markdown in one file, and the HTML pages
# (one per notebook of the plan, and an index) in $(HTML).
P4_MODELS ?= resnet18 resnet34 efficientnet_b0 convnext_tiny
P4_FRACS ?= 20 50 100
P4 := $(WORK)/phase4
P4B_TOP ?= 3
P4B_HARD ?= 10
TOP_JSON := $(P4)/top.json
TOP_MK := $(P4)/top.mk
# P4B_MODELS given (command line or environment): no choice is made, top.json
# is not needed
P4B_OVERRIDE := $(filter-out undefined,$(origin P4B_MODELS))
P4B_GRADCAM_N ?= 10
HTML ?= $(WORK)/html

# Grad-CAM's layer per model: P4B_GRADCAM_LAYER_<model> (empty: fd-gradcam's
# default, the last convolutional stage; make demo's 24-32 px images leave
# that stage 1x1 or 2x2, so the demo names earlier layers)
# $(call gradcam,RUNDIR,PACK,OUT,MODEL): OUT/gradcam.tsv (rules made on first use):
# OUT.rows.tsv, the rows (fd-report --section gradcam-rows of RUNDIR's
# preds-test.tsv), then fd-gradcam of RUNDIR's best checkpoint on them into
# the folder OUT (written whole by a rename: an interrupted run leaves no OUT;
# an outdated OUT is removed first)
gradcam = $(call need_gradcam,$1,$2,$3,$4)$3/gradcam.tsv
need_gradcam = $(if $(GC_$3),,$(eval GC_$3 := 1)$(eval $(call GRADCAM_RULE,$1,$2,$3,$4)))
define GRADCAM_RULE
$3.rows.tsv: $1/preds-test.tsv $(FD)/fd-report
	@mkdir -p $$(@D)
	$(FD)/fd-report -q --section gradcam-rows -n $(P4B_GRADCAM_N) -o $$@ $1/preds-test.tsv
$3/gradcam.tsv: $3.rows.tsv $1/$(RUN_DONE) $2 $(FD)/fd-gradcam
	rm -rf $3
	$(FD)/fd-gradcam -q $(if $(THREADS),--threads $(THREADS)) --model $1/best.safetensors --pack $2 $(if $(P4B_GRADCAM_LAYER_$4),--layer $(P4B_GRADCAM_LAYER_$4)) -n $$$$((4 * $(P4B_GRADCAM_N))) --rows $$$$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$$$$i]=i;next}{printf "%s%s",s,$$$$c["row"];s=","}' $3.rows.tsv) -o $3
endef

# (BEST_SIZE, BEST_GEOMETRY, BEST_VARIANT: from best.mk, included by phase3.mk)
ifneq ($(wildcard $(BEST_MK)),)
P4_RUNS := $(foreach m,$(P4_MODELS),$(foreach f,$(P4_FRACS),$(call labelled,$f%,$(call runs,$m,$f,$(BEST_SIZE),$(BEST_GEOMETRY),$(BEST_VARIANT)))))
# every fraction scored on the same rows: the full fold K (preds-full.tsv) and the test set
P4_FULLS := $(foreach m,$(P4_MODELS),$(foreach f,$(P4_FRACS),$(call fulls,$m,$f,$(BEST_SIZE),$(BEST_GEOMETRY),$(BEST_VARIANT))))

$(P4)/4a-scaling.md: $(call report_deps,$(P4_RUNS)) $(P4_FULLS) $(BEST_JSON) $(SHARED) $(FD)/fd-report
	@mkdir -p $(@D)
	$(REPORT) --section 4a-scaling -o $@ $(P4_RUNS)

# 4B's choice: phase 3's runs (the phase-1 and phase-3 models at the phase-2
# choices), ranked by validation AUC; top.mk and top.md are written with it
$(TOP_JSON): $(call report_deps,$(P3_RUNS)) $(BEST_JSON) $(FD)/fd-report
	@mkdir -p $(@D)
	$(FD)/fd-report -q --section top --top $(P4B_TOP) -o $@ $(P3_RUNS)
phase4-top: $(TOP_JSON)

ifeq ($(P4B_OVERRIDE),)
ifneq ($(wildcard $(TOP_MK)),)
include $(TOP_MK)
endif
P4B_MODELS := $(P4B_TOP_MODELS)
P4B_CHOICE := $(TOP_JSON)
endif

ifneq ($(strip $(P4B_MODELS)),)
P4B_RUNS := $(foreach m,$(P4B_MODELS),$(call labelled,full,$(call runs,$m,100,$(BEST_SIZE),$(BEST_GEOMETRY),$(BEST_VARIANT))))
P4B_PACK := $(call pack,100,$(BEST_SIZE),$(BEST_GEOMETRY))
# Grad-CAM of each model's fold-0 run (its folders' gradcam.tsv files)
P4B_GRADCAM := $(foreach m,$(P4B_MODELS),$(call gradcam,$(call rundir,$m,100,$(BEST_SIZE),$(BEST_GEOMETRY),$(BEST_VARIANT),$(firstword $(FOLD_IDS))),$(P4B_PACK),$(P4)/gradcam/$m,$m))
P1_GRADCAM := $(foreach m,$(P1_MODELS),$(call gradcam,$(call rundir,$m,$(FRAC),$(SIZE_LO),center,,$(firstword $(FOLD_IDS))),$(call pack,$(FRAC),$(SIZE_LO),center),$(P1)/gradcam/$m,$m))

$(P4)/4b-final.md: $(call report_deps,$(P4B_RUNS)) $(P4B_CHOICE) $(P4B_GRADCAM) $(BEST_JSON) $(FD)/fd-report
	@mkdir -p $(@D)
	$(FD)/fd-report -q --section 4b-final -n $(P4B_HARD) -o $@ $(P4B_RUNS)
phase4-report: $(P4)/4a-scaling.md $(P4)/4b-final.md

$(WORK)/report.md: $(REPORTS) $(P3)/report.md $(P4)/4a-scaling.md $(if $(P4B_CHOICE),$(P4)/top.md) $(P4)/4b-final.md
	cat $^ >$@.tmp && mv $@.tmp $@

# the HTML pages (doc/report.md): one fd-report call per page, each
# rewriting the index; the index once more after all of them
HTML_PAGE = $(FD)/fd-report -q --html $(HTML) --page
rundirs = $(foreach w,$1,$(lastword $(subst =, ,$w)))
P2_ALL := $(sort $(call rundirs,$(P2A_GEO) $(P2A_COL) $(P2A_HOLD) $(P2B) $(P2C) $(P2D) $(P2E)))
P2_TABLES := $(addprefix $(P2)/,$(addsuffix .tsv,2a-geometry 2a-colour 2a-holdout 2b-resolution 2c-facecrop 2d-augment 2e-augment-facecrop))
P4_ALL := $(sort $(call rundirs,$(P4_RUNS) $(P4B_RUNS)))
P4_TABLES := $(addprefix $(P4)/,4a-scaling.tsv 4b-final.tsv 4b-final.hard.tsv 4b-final.confidence.tsv)
P2_PACKS := $(foreach g,center letterbox face,$(call pack,$(FRAC),$(SIZE_HI),$g))
HTML_FILES := $(addprefix $(HTML)/,$(addsuffix .html,01-eda 02-preprocessing 03-phase1 04-phase2 05-phase3 06-phase4 07-gradcam))

$(HTML)/01-eda.html: $(WORK)/index.tsv $(call pack,$(FRAC),$(SIZE_LO),center) $(FD)/fd-report
	$(HTML_PAGE) 01-eda --index $(WORK)/index.tsv --pack $(call pack,$(FRAC),$(SIZE_LO),center)
$(HTML)/02-preprocessing.html: $(WORK)/faces.tsv $(P2_PACKS) $(SHARED) $(CONF)/augment.json $(FD)/fd-report
	$(HTML_PAGE) 02-preprocessing --index $(WORK)/faces.tsv --config $(SHARED) --config $(CONF)/augment.json $(P2_PACKS)
$(HTML)/03-phase1.html: $(call report_deps,$(P1_RUNS)) $(P1)/report.md $(FD)/fd-report
	$(HTML_PAGE) 03-phase1 --table $(P1)/report.tsv $(call rundirs,$(P1_RUNS))
$(HTML)/04-phase2.html: $(call report_deps,$(P2_ALL)) $(REPORTS) $(FD)/fd-report
	$(HTML_PAGE) 04-phase2 $(addprefix --table ,$(P2_TABLES)) $(P2_ALL)
$(HTML)/05-phase3.html: $(call report_deps,$(P3_RUNS)) $(P3)/report.md $(FD)/fd-report
	$(HTML_PAGE) 05-phase3 --table $(P3)/report.tsv $(call rundirs,$(P3_RUNS))
$(HTML)/06-phase4.html: $(call report_deps,$(P4_ALL)) $(P4)/4a-scaling.md $(P4)/4b-final.md $(P4B_PACK) $(FD)/fd-report
	$(HTML_PAGE) 06-phase4 $(addprefix --table ,$(P4_TABLES)) --pack $(P4B_PACK) $(P4_ALL)
$(HTML)/07-gradcam.html: $(P1_GRADCAM) $(P4B_GRADCAM) $(FD)/fd-report
	$(HTML_PAGE) 07-gradcam $(foreach m,$(P1_MODELS),"phase 1 $m=$(P1)/gradcam/$m") $(foreach m,$(P4B_MODELS),"phase 4B $m=$(P4)/gradcam/$m")
$(HTML)/index.html: $(HTML_FILES)
	$(HTML_PAGE) index
report-all: $(WORK)/report.md $(HTML)/index.html
else
phase4-report report-all:
	@echo "make: no phase-4B models: $(TOP_MK) is missing (run make phase4) and P4B_MODELS is not set" >&2; exit 2
endif
else
phase4-top phase4-report report-all:
	@echo "make: $(BEST_MK) is missing: run make phase2 (or make phase4)" >&2; exit 2
endif

# three makes: best.json (phase 2), then top.json (reads best.mk), then the
# reports (read top.mk); neither .mk has a rule, so no make rebuilds it to read it
phase4: $(BEST_JSON)
	+$(if $(P4B_OVERRIDE),true,$(SUBMAKE) phase4-top)
	+$(SUBMAKE) phase4-report
report: $(REPORTS) $(BEST_JSON)
	+$(if $(P4B_OVERRIDE),true,$(SUBMAKE) phase4-top)
	+$(SUBMAKE) report-all
	@echo "report: $(WORK)/report.md and $(HTML)/index.html"
.PHONY: phase4 phase4-top phase4-report report report-all
