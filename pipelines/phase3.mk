# phase3.mk: extended architectures (PLAN.md phase 3) at the phase-2 choices.
# The choices live in $(BEST_JSON), written by fd-report from phase 2's runs with
# $(BEST_MK) beside it: the same choices as make variables. The rules that depend
# on them are made by a second make that includes best.mk once it exists (make
# phase3 brings best.json, and so best.mk, up to date first); best.mk has no rule
# of its own, so no make ever rebuilds phase 2 just to read it. The phase-3
# report depends on best.json: a new choice reruns it. The phase-1 models are
# included at the same settings for comparison (their runs are shared with phase 2).
P3_MODELS ?= resnet34 resnet50 efficientnet_b0 convnext_tiny mobilenet_v3_small
P3 := $(WORK)/phase3
SUBMAKE = $(MAKE) -f $(firstword $(MAKEFILE_LIST))

ifneq ($(wildcard $(BEST_MK)),)
include $(BEST_MK)
BEST_VARIANT := $(if $(filter true,$(BEST_AUGMENT)),augment)
P3_RUNS := $(foreach m,$(P1_MODELS) $(P3_MODELS),$(call labelled,best,$(call runs,$m,$(FRAC),$(BEST_SIZE),$(BEST_GEOMETRY),$(BEST_VARIANT))))

$(P3)/report.md: $(call report_deps,$(P3_RUNS)) $(BEST_JSON) $(SHARED) $(FD)/fd-report
	@mkdir -p $(@D)
	$(REPORT) --section phase3 -o $@ $(P3_RUNS)
phase3-report: $(P3)/report.md
else
phase3-report:
	@echo "make: $(BEST_MK) is missing: run make phase2 (or make phase3)" >&2; exit 2
endif

phase3: $(BEST_JSON)
	+$(SUBMAKE) phase3-report
.PHONY: phase3 phase3-report
