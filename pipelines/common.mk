# common.mk: variables shared by every phase, and the demo pipeline.
# Variables (override on the command line: make demo WORK=/scratch/fd):
#   DATA    data set root (folders wiki/ text2img/ inpainting/ insight/)
#   WORK    artefact folder
#   DEVICE  cpu or cuda[:N]
#   FOLDS   number of cross-validation folds
#   LAUNCH  prefix for every training and evaluation command (e.g. srun ...)
WORK    ?= work
DATA    ?= $(WORK)/demo/data
DEVICE  ?= cpu
FOLDS   ?= 5
LAUNCH  ?=
SEED    ?= 42
FD      := $(CURDIR)/bin

# --- make demo: fd-synth data through index, split and pack ---------------
DEMO        := $(WORK)/demo
DEMO_GROUPS ?= 100

$(DEMO)/data/cues.tsv:
	@mkdir -p $(DEMO)
	rm -rf $(DEMO)/data
	$(FD)/fd-synth -o $(DEMO)/data --groups $(DEMO_GROUPS) --seed $(SEED)

$(DEMO)/index.tsv: $(DEMO)/data/cues.tsv
	$(FD)/fd-index --root $(DEMO)/data -o $@

$(DEMO)/split.tsv: $(DEMO)/index.tsv
	$(FD)/fd-split --folds $(FOLDS) --test 0.1 --fractions 0.2,0.5,1 --seed $(SEED) -o $@ $<

$(DEMO)/pack128-center.safetensors: $(DEMO)/split.tsv
	$(FD)/fd-pack --root $(DEMO)/data --size 128 --geometry center -o $@ $<

$(DEMO)/pack128-letterbox.safetensors: $(DEMO)/split.tsv
	$(FD)/fd-pack --root $(DEMO)/data --size 128 --geometry letterbox -o $@ $<

demo-run: $(DEMO)/pack128-center.safetensors $(DEMO)/pack128-letterbox.safetensors
	@echo
	@echo "demo: images per fold and source (from $(DEMO)/pack128-center.tsv)"
	@awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$$i]=i;next} \
		{n[$$c["fold"]"\t"$$c["source"]]++} END{for(k in n)print k"\t"n[k]}' \
		$(DEMO)/pack128-center.tsv | sort | column -t
	@echo "demo: packs in $(DEMO)/ (training and the report come with later pipeline stages)"

.PHONY: demo-run
