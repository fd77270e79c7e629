# phase4.mk: 4A data quantity scaling (PLAN.md phase 4) of the chosen models at
# the phase-2 choices on the nested subsamples in20 in50 in100, every fraction
# scored on the same rows (the full validation fold of the in100 pack, eval
# "full", and the test set), so the comparison is paired; then make report,
# every phase's Markdown in one file. (4B, the full-data evaluation with
# Grad-CAM, comes with fd-gradcam.)
P4_MODELS ?= resnet18 resnet34 efficientnet_b0 convnext_tiny
P4_FRACS ?= 20 50 100
P4 := $(WORK)/phase4

# (BEST_SIZE, BEST_GEOMETRY, BEST_VARIANT: from best.mk, included by phase3.mk)
ifneq ($(wildcard $(BEST_MK)),)
P4_RUNS := $(foreach m,$(P4_MODELS),$(foreach f,$(P4_FRACS),$(call labelled,$f%,$(call runs,$m,$f,$(BEST_SIZE),$(BEST_GEOMETRY),$(BEST_VARIANT)))))
# every fraction scored on the same rows: the full fold K (preds-full.tsv) and the test set
P4_FULLS := $(foreach m,$(P4_MODELS),$(foreach f,$(P4_FRACS),$(call fulls,$m,$f,$(BEST_SIZE),$(BEST_GEOMETRY),$(BEST_VARIANT))))

$(P4)/4a-scaling.md: $(call report_deps,$(P4_RUNS)) $(P4_FULLS) $(BEST_JSON) $(SHARED) $(FD)/fd-report
	@mkdir -p $(@D)
	$(REPORT) --section 4a-scaling -o $@ $(P4_RUNS)
phase4-report: $(P4)/4a-scaling.md

$(WORK)/report.md: $(REPORTS) $(P3)/report.md $(P4)/4a-scaling.md
	cat $^ >$@.tmp && mv $@.tmp $@
report-all: $(WORK)/report.md
else
phase4-report report-all:
	@echo "make: $(BEST_MK) is missing: run make phase2 (or make phase4)" >&2; exit 2
endif

phase4: $(BEST_JSON)
	+$(SUBMAKE) phase4-report
report: $(REPORTS) $(BEST_JSON)
	+$(SUBMAKE) report-all
	@echo "report: $(WORK)/report.md"
.PHONY: phase4 phase4-report report report-all
