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
# Then make report, every phase's Markdown in one file.
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
# Grad-CAM hook (issue 13): the fd-gradcam outputs 4B adds to its report's
# prerequisites, one DIR per model and category (true real, true fake, false
# positive, false negative: rows from 4b-final.hard.tsv and the test preds);
# empty until fd-gradcam's rules are added (doc/pipelines.md, "Phase 4B").
P4B_GRADCAM ?=

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

$(P4)/4b-final.md: $(call report_deps,$(P4B_RUNS)) $(P4B_CHOICE) $(P4B_GRADCAM) $(BEST_JSON) $(FD)/fd-report
	@mkdir -p $(@D)
	$(FD)/fd-report -q --section 4b-final -n $(P4B_HARD) -o $@ $(P4B_RUNS)
phase4-report: $(P4)/4a-scaling.md $(P4)/4b-final.md

$(WORK)/report.md: $(REPORTS) $(P3)/report.md $(P4)/4a-scaling.md $(if $(P4B_CHOICE),$(P4)/top.md) $(P4)/4b-final.md
	cat $^ >$@.tmp && mv $@.tmp $@
report-all: $(WORK)/report.md
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
	@echo "report: $(WORK)/report.md"
.PHONY: phase4 phase4-top phase4-report report report-all
