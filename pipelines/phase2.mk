# phase2.mk: preprocessing impact (PLAN.md phase 2, DESIGN.md's naming):
#   2A shortcut analysis: test 1 geometry (model G trained on letterbox packs,
#      its checkpoints scored under letterbox and matched geometry; control C
#      trained and scored on matched packs; doc/shortcuts.md), test 2 colour normalisation
#      (imagenet vs real-train), test 3 source hold-out (one fake source at a time)
#   2B resolution SIZE_LO vs SIZE_HI; 2C face crop; 2D augmentation; 2E augmentation
#      with face crop. Then best.json, the choices, and best.mk, the same choices as
#      make variables (BEST_SIZE, BEST_GEOMETRY, BEST_AUGMENT) that phases 3 and 4
#      include; fd-report writes both in one command, best.json (the target) last.
P2_MODELS ?= simplecnn resnet18
P2A_MODEL ?= resnet18
P2 := $(WORK)/phase2
BEST_JSON := $(P2)/best.json
BEST_MK := $(P2)/best.mk

# 2A test 1: geometry (doc/shortcuts.md). G: trained on letterbox (the original
# geometry visible), its validation folds scored again from the matched pack
# (preds-matched.tsv); C: trained and scored on matched (bars on both classes).
P2A_GEO := $(call labelled,letterbox,$(call runs,$(P2A_MODEL),$(FRAC),$(SIZE_HI),letterbox,)) \
	$(call labelled,matched,$(call runs,$(P2A_MODEL),$(FRAC),$(SIZE_HI),matched,))
P2A_GEO_EVALS := $(call evals,$(P2A_MODEL),$(FRAC),$(SIZE_HI),letterbox,,matched)
# 2A test 2: colour normalisation
P2A_COL := $(call labelled,imagenet,$(call runs,$(P2A_MODEL),$(FRAC),$(SIZE_HI),center,)) \
	$(call labelled,real-train,$(call runs,$(P2A_MODEL),$(FRAC),$(SIZE_HI),center,normalize-real-train))
# 2A test 3: source hold-out
P2A_HOLD := $(call labelled,all,$(call runs,$(P2A_MODEL),$(FRAC),$(SIZE_HI),center,)) \
	$(foreach s,$(FAKE_SOURCES),$(call labelled,no-$s,$(call runs,$(P2A_MODEL),$(FRAC),$(SIZE_HI),center,holdout-$s)))
# 2B resolution (labels are the sizes: fd-report --section best reads them)
P2B := $(foreach m,$(P2_MODELS),$(foreach z,$(SIZE_LO) $(SIZE_HI),$(call labelled,$z,$(call runs,$m,$(FRAC),$z,center,))))
# 2C face crop, 2D augmentation, 2E both (labels center face center-aug face-aug)
P2C := $(foreach m,$(P2_MODELS),$(call labelled,center,$(call runs,$m,$(FRAC),$(SIZE_HI),center,)) \
	$(call labelled,face,$(call runs,$m,$(FRAC),$(SIZE_HI),face,)))
P2D := $(foreach m,$(P2_MODELS),$(call labelled,center,$(call runs,$m,$(FRAC),$(SIZE_HI),center,)) \
	$(call labelled,center-aug,$(call runs,$m,$(FRAC),$(SIZE_HI),center,augment)))
P2E := $(foreach m,$(P2_MODELS),$(call labelled,face,$(call runs,$m,$(FRAC),$(SIZE_HI),face,)) \
	$(call labelled,face-aug,$(call runs,$m,$(FRAC),$(SIZE_HI),face,augment)))

# $(call P2_REPORT,section,runs,extra prerequisites)
define P2_REPORT
$(P2)/$1.md: $$(call report_deps,$2) $3 $(SHARED) $(FD)/fd-report
	@mkdir -p $$(@D)
	$(REPORT) --section $1 -o $$@ $2
endef
$(eval $(call P2_REPORT,2a-geometry,$(P2A_GEO),$(P2A_GEO_EVALS)))
$(eval $(call P2_REPORT,2a-colour,$(P2A_COL)))
$(eval $(call P2_REPORT,2a-holdout,$(P2A_HOLD)))
$(eval $(call P2_REPORT,2b-resolution,$(P2B)))
$(eval $(call P2_REPORT,2c-facecrop,$(P2C)))
$(eval $(call P2_REPORT,2d-augment,$(P2D)))
$(eval $(call P2_REPORT,2e-augment-facecrop,$(P2E)))

P2_CHOICE := $(addprefix $(P2)/,2b-resolution.md 2c-facecrop.md 2d-augment.md 2e-augment-facecrop.md)
# best.json: the combinations run in 2B-2E and 2A test 1 (letterbox), and 2A's
# geometry verdict (letterbox is no candidate when it found a shortcut)
$(BEST_JSON): $(P2_CHOICE) $(P2)/2a-geometry.md $(FD)/fd-report
	$(FD)/fd-report -q --section best --geometry $(P2)/2a-geometry.compare.tsv -o $@ \
		$(P2_CHOICE:.md=.folds.tsv) $(P2)/2a-geometry.folds.tsv

phase2a: $(addprefix $(P2)/,2a-geometry.md 2a-colour.md 2a-holdout.md)
phase2b: $(P2)/2b-resolution.md
phase2c: $(P2)/2c-facecrop.md
phase2d: $(P2)/2d-augment.md
phase2e: $(P2)/2e-augment-facecrop.md
phase2: phase2a phase2b phase2c phase2d phase2e $(BEST_JSON)
REPORTS += $(addprefix $(P2)/,2a-geometry.md 2a-colour.md 2a-holdout.md) $(P2_CHOICE)
.PHONY: phase2 phase2a phase2b phase2c phase2d phase2e
