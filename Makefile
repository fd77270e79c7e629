# fd — top-level build. GNU Make only.
#   make            build bin/fd-* and build/libfd.a
#   make test       install missing packages, build, run the TAP suite under prove
#   make demo       install missing packages, build, run the demo pipeline on fd-synth data
#   make SANITIZE=1 build with ASan+UBSan (into build-san/ so objects never mix)
#   make fuzz FUZZ_SECONDS=N   run every libFuzzer target for N seconds (clang)
#   make install PREFIX=/usr/local
.DEFAULT_GOAL := all
SHELL := /bin/bash
.DELETE_ON_ERROR:

CC      ?= cc
PREFIX  ?= /usr/local
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
SANITIZE ?=
ifeq ($(origin CC),default)
CC := cc
endif

ifeq ($(SANITIZE),1)
B ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B ?= build
SANFLAGS :=
endif
BIN := $(B)/bin

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS  ?= -O2 -g
# GCC 12 vectorises at -O2 only loops whose trip count needs no epilogue
# ("very cheap" cost model); the dynamic model also vectorises the kernels'
# elementwise loops (no effect on results: no reassociation without
# -ffast-math). Clang has no such flag and vectorises at -O2 already.
VECFLAGS := $(shell $(CC) -fvect-cost-model=dynamic -Werror -x c -c -o /dev/null /dev/null 2>/dev/null && echo -fvect-cost-model=dynamic)
# oneDNN, the CPU kernels' library (doc/onednn.md "oneDNN 3 on AVX2 CPUs"):
# ONEDNN=2 links Debian's libdnnl-dev (2.6); ONEDNN=3 links a oneDNN 3.x put
# into .deps/ by scripts/onednn3.sh and found by rpath: ONEDNN3=3.2 (the
# default) PyPI's onednn-cpu-gomp 3.2 wheel (a download, SHA-256 pinned);
# ONEDNN3=3.7 oneDNN 3.7.2 built from Debian 13's source (pinned; about 32
# minutes on 2 cores, once). The default is 2: on AVX-512 CPUs it has the
# brgemm kernels, AMX and Winograd; on AVX2 CPUs 3.x infers ResNets and
# SimpleCNN 1.1-1.4x faster but MobileNetV3, EfficientNet and ConvNeXt
# 0.83-0.88x, and 3.7 trains 1.06-1.19x where 3.2 trains level (make
# bench-onednn-ab; doc/onednn.md). The choice is kept in $(B)/onednn:
# changing it rebuilds every object.
ONEDNN  ?= 2
ONEDNN3 ?= 3.2
ifeq ($(ONEDNN),3)
ONEDNN3_FULL := $(or $(patsubst $(ONEDNN3)=%,%,$(filter $(ONEDNN3)=%,3.2=3.2.0 3.7=3.7.2)),\
	$(error ONEDNN3=$(ONEDNN3): say 3.2 (PyPI's wheel) or 3.7 (built from Debian's source)))
ONEDNN3_DIR := $(CURDIR)/.deps/onednn-$(ONEDNN3_FULL)
ONEDNN_ID := 3-$(ONEDNN3_FULL)
DNNL_CFLAGS := -I$(ONEDNN3_DIR)/include
NN_LDLIBS := $(ONEDNN3_DIR)/lib/libdnnl.so.3 -Wl,-rpath,'$$ORIGIN/../lib/fd:$(ONEDNN3_DIR)/lib'
DNNL_DEP := $(ONEDNN3_DIR)/lib/libdnnl.so.3
else ifeq ($(ONEDNN),2)
ONEDNN_ID := 2
DNNL_CFLAGS :=
NN_LDLIBS := -ldnnl
DNNL_DEP :=
else
$(error ONEDNN=$(ONEDNN): say 2 (Debian's oneDNN 2.6) or 3 (oneDNN 3.x, ONEDNN3=3.2 or 3.7))
endif
ONEDNN_STAMP := $(B)/onednn
# (written whole by a rename: tests run make beside each other, and one
# reading a half-written stamp would rewrite it and rebuild everything under
# the running tests)
$(shell mkdir -p $(B) && { [ "$$(cat $(ONEDNN_STAMP) 2>/dev/null)" = "$(ONEDNN_ID)" ] || \
	{ echo $(ONEDNN_ID) > $(ONEDNN_STAMP).$$$$ && mv -f $(ONEDNN_STAMP).$$$$ $(ONEDNN_STAMP); }; })
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(VECFLAGS) $(SANFLAGS) -fopenmp -Ilib $(DNNL_CFLAGS) -MMD -MP
LDLIBS  := -lturbojpeg -lpng -lz -ljansson -lm -lpthread
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS) -fopenmp

# Two archives, sources found by pattern: libfdnn.a holds the network code
# (the lib/ folders in NN_DIRS: op table, oneDNN kernels, models, MTCNN,
# training) and is the only thing that needs oneDNN; libfd.a holds the rest.
# Only the tools in NN_TOOLS (and the unit tests, benches and fuzz targets)
# link libfdnn.a and -ldnnl; `ldd bin/fd-split | grep dnnl` is empty
# (tests/tools/link.t).
NN_DIRS  := nn models face train
NN_TOOLS := fd-train fd-eval fd-facecrop fd-gradcam
ALL_LIB_SRC := $(sort $(wildcard lib/*/*.c))
NN_SRC   := $(sort $(foreach d,$(NN_DIRS),$(wildcard lib/$(d)/*.c)))
LIB_SRC  := $(filter-out $(NN_SRC),$(ALL_LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
# The CUDA backend (lib/nn/*.cu) joins libfdnn.a when lib/nn/cuda.mk (included
# below) builds it: the CUDA=0/1 switch, doc/cuda.md.
NN_OBJ   := $(NN_SRC:%.c=$(B)/obj/%.o)
TOOL_SRC := $(sort $(wildcard tools/fd-*.c))
TOOLS    := $(TOOL_SRC:tools/%.c=$(BIN)/%)
NN_TOOL_BINS := $(addprefix $(BIN)/,$(NN_TOOLS))
CLI_OBJ  := $(B)/obj/tools/cli.o
UNIT_SRC := $(sort $(wildcard tests/unit/t_*.c))
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_TESTS := $(sort $(wildcard tests/tools/*.t))

all: tools bin

# The programs and the library without touching the bin link (other compilers:
# make tools units CC=clang B=build-clang).
tools: $(TOOLS) $(B)/libfd.a $(B)/libfdnn.a

# bin/ is what users and tests call; it points at the current build flavour.
bin: $(TOOLS)
	@rm -f bin && ln -s $(BIN) bin

# (the archives also depend on the Makefile: which folder goes where is decided here)
$(B)/libfd.a: $(LIB_OBJ) Makefile
	@mkdir -p $(@D)
	rm -f $@.tmp && ar rcs $@.tmp $(filter %.o,$^) && mv $@.tmp $@

$(B)/libfdnn.a: $(NN_OBJ) Makefile
	@mkdir -p $(@D)
	rm -f $@.tmp && ar rcs $@.tmp $(filter %.o,$^) && mv $@.tmp $@

$(B)/obj/%.o: %.c $(ONEDNN_STAMP) | $(DNNL_DEP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# sqrtf without errno (its argument is never negative there), so the AdamW
# loop vectorises; the same correctly rounded square roots (lib/nn/optim.c)
$(B)/obj/lib/nn/optim.o: ALL_CFLAGS += -fno-math-errno

# A tool links libfdnn.a (before libfd.a, which it uses) and oneDNN only when
# it is in NN_TOOLS, and cli_nn.o (--device; in a CUDA build its reference to
# the CUDA table links cuDNN/cuBLAS/cudart) only when it is in DEVICE_TOOLS:
# fd-facecrop runs on the CPU only and stays free of the CUDA libraries (its
# start and address space; probe_resources.t runs it under ulimit -v).
DEVICE_TOOLS := fd-train fd-eval fd-gradcam
$(NN_TOOL_BINS): $(B)/libfdnn.a
$(addprefix $(BIN)/,$(DEVICE_TOOLS)): $(B)/obj/tools/cli_nn.o
# (linked under a temporary name and renamed: tests run one make beside
# others, and a binary being written is not executable: "Permission denied")
$(BIN)/fd-%: $(B)/obj/tools/fd-%.o $(CLI_OBJ) $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $(@D)/.$(@F).tmp $(filter %.o,$^) $(filter %/libfdnn.a,$^) $(B)/libfd.a \
		$(if $(filter %/libfdnn.a,$^),$(NN_LDLIBS)) $(LDLIBS) && mv -f $(@D)/.$(@F).tmp $@

$(B)/tests/t_%: $(B)/obj/tests/unit/t_%.o $(B)/libfdnn.a $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $(@D)/.$(@F).tmp $^ $(NN_LDLIBS) $(LDLIBS) && mv -f $(@D)/.$(@F).tmp $@

# Objects reached only through a pattern rule (the tools', the unit tests')
# would be intermediate files: a fresh build deleted them at its end, and the
# next make found them named in their .d files, rebuilt them and relinked
# every tool. install.t runs `make install` beside the other tests, so in a
# fresh clone (CI) it relinked build-san/bin/fd-gradcam while gradcam.t ran
# it ("Permission denied", .ci/run under ASan, twice). These objects are
# never intermediate. (Only these: the pipelines' artifacts are, on purpose,
# remade when missing.)
.SECONDARY: $(patsubst %.c,$(B)/obj/%.o,$(wildcard tools/*.c)) $(UNIT_SRC:%.c=$(B)/obj/%.o)

-include $(LIB_OBJ:.o=.d) $(NN_OBJ:.o=.d) $(B)/obj/tools/*.d $(B)/obj/tests/unit/*.d

deps:
	@scripts/deps.sh

# which oneDNN this build links (2 or 3; .ci/run tests the other one too)
onednn-version:
	@echo $(ONEDNN)

# oneDNN 3.x for ONEDNN=3 (scripts/onednn3.sh: PyPI's 3.2 wheel or 3.7 from
# Debian's source, SHA-256 pinned)
ifeq ($(ONEDNN),3)
$(ONEDNN3_DIR)/lib/libdnnl.so.3:
	@scripts/onednn3.sh $(ONEDNN3) $(ONEDNN3_DIR)
endif

# A venv over Debian's Python with the PyPI-only test references (safetensors).
venv: deps
	@scripts/venv.sh

# MTCNN weights from the facenet-pytorch wheel (checked SHA-256) into models/mtcnn/.
models:
	@scripts/models.sh

# torchvision's ImageNet checkpoints (configs/weights.tsv: URL and SHA-256) into
# models/torchvision/, for config init "imagenet" (doc/train.md). WEIGHTS=resnet18
# fetches one; neither make demo nor make test needs them.
WEIGHTS ?=
weights:
	@scripts/weights.sh $(WEIGHTS)

# Reference fixtures written by PyTorch / PIL / scikit-learn scripts.
include tests/ref/ref.mk

check-build: all $(UNITS) ref-fixtures

# Tests share 2 cores with each other: OpenMP threads must sleep, not spin,
# while they wait (a spinning team slowed the model tests 9x under load).
test: deps venv models
	OMP_WAIT_POLICY=PASSIVE $(MAKE) -j$(JOBS) check-build
	OMP_WAIT_POLICY=PASSIVE FD_BUILD=$(B) prove --exec '' -j2 $(UNITS) $(TOOL_TESTS)

units: $(UNITS)

include pipelines/common.mk
# Module fragments: the CUDA backend, fuzz targets, benchmarks, pipelines of each phase.
-include lib/nn/cuda.mk
-include tests/fuzz/fuzz.mk
-include bench/bench.mk
-include $(sort $(wildcard pipelines/phase*.mk))

demo: deps models
	$(MAKE) all
	$(MAKE) -f Makefile demo-run

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	if [ "$(ONEDNN)" = 3 ]; then install -d $(DESTDIR)$(PREFIX)/lib/fd && \
		so=$$(readlink $(ONEDNN3_DIR)/lib/libdnnl.so.3) && \
		install -m 644 $(ONEDNN3_DIR)/lib/$$so $(DESTDIR)$(PREFIX)/lib/fd/ && \
		ln -sf $$so $(DESTDIR)$(PREFIX)/lib/fd/libdnnl.so.3; fi
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	install -d $(DESTDIR)$(PREFIX)/share/fd
	install -m 644 configs/sources.tsv $(DESTDIR)$(PREFIX)/share/fd/
	if [ -s models/mtcnn/pnet.pt ]; then install -d $(DESTDIR)$(PREFIX)/share/fd/mtcnn && \
		install -m 644 models/mtcnn/*.pt models/mtcnn/NOTICE $(DESTDIR)$(PREFIX)/share/fd/mtcnn/; fi
	if ls models/torchvision/*.pth >/dev/null 2>&1; then install -d $(DESTDIR)$(PREFIX)/share/fd/torchvision && \
		install -m 644 models/torchvision/*.pth $(DESTDIR)$(PREFIX)/share/fd/torchvision/; fi

clean:
	rm -rf build build-san build-fuzz build-clang build-onednn2 build-onednn3 bin

.PHONY: all tools bin deps onednn-version venv models weights test check-build units demo install clean
