# phase1.mk: the controlled baseline (PLAN.md phase 1): SimpleCNN and ResNet18,
# FRAC% of the data, SIZE_LO pixels, centre crop, no augmentation, FOLDS-fold CV.
P1_MODELS ?= simplecnn resnet18
P1 := $(WORK)/phase1

P1_RUNS := $(foreach m,$(P1_MODELS),$(call labelled,baseline,$(call runs,$m,$(FRAC),$(SIZE_LO),center,)))

$(P1)/report.md: $(call report_deps,$(P1_RUNS)) $(SHARED) $(FD)/fd-report
	@mkdir -p $(@D)
	$(REPORT) --section phase1 -o $@ $(P1_RUNS)

phase1: $(P1)/report.md
REPORTS += $(P1)/report.md
.PHONY: phase1
