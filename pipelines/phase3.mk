# phase3.mk: extended architectures (PLAN.md phase 3) at the phase-2 choices.
# The choices live in $(BEST_JSON), written by fd-report from phase 2's runs, so
# the rules that depend on them are made by a second make that reads the file
# once it exists (make phase3 builds it first). The phase-1 models are included
# at the same settings for comparison (their runs are shared with phase 2).
P3_MODELS ?= resnet34 resnet50 efficientnet_b0 convnext_tiny mobilenet_v3_small
P3 := $(WORK)/phase3
SUBMAKE = $(MAKE) -f $(firstword $(MAKEFILE_LIST))
# a top-level value of best.json, as fd-report writes it (one key per line)
best_get = $(shell sed -n 's/^  "$1": "\{0,1\}\([^",]*\)"\{0,1\},\{0,1\}$$/\1/p' $(BEST_JSON))

ifneq ($(wildcard $(BEST_JSON)),)
BEST_SIZE := $(call best_get,size)
BEST_GEOM := $(call best_get,geometry)
BEST_VARIANT := $(if $(filter true,$(call best_get,augment)),augment)
P3_RUNS := $(foreach m,$(P1_MODELS) $(P3_MODELS),$(call labelled,best,$(call runs,$m,$(FRAC),$(BEST_SIZE),$(BEST_GEOM),$(BEST_VARIANT))))

$(P3)/report.md: $(call report_deps,$(P3_RUNS)) $(SHARED) $(FD)/fd-report
	@mkdir -p $(@D)
	$(REPORT) --section phase3 -o $@ $(P3_RUNS)
phase3-report: $(P3)/report.md
else
phase3-report:
	@echo "make: $(BEST_JSON) is missing: run make phase2 (or make phase3)" >&2; exit 2
endif

phase3: $(BEST_JSON)
	+$(SUBMAKE) phase3-report
.PHONY: phase3 phase3-report
