# lib/nn/cuda.mk: the CUDA backend (lib/nn/*.cu), included by the Makefile.
#   make            builds it when nvcc is found (PATH, or /usr/local/cuda/bin)
#   make CUDA=1     insists (fails without nvcc); make CUDA=0 leaves it out
#   SANITIZE=1 builds leave it out unless CUDA=1 is given (ASan's shadow
#   memory and the CUDA driver do not mix)
# With CUDA, the .cu objects (the CUDA op table and its kernels) join
# libfdnn.a and the programs that link libfdnn.a get cudart, cuBLAS and cuDNN
# as needed: only a program that refers to the CUDA backend strongly
# (t_cuda; tools/cli_nn.c, so fd-train, fd-eval and fd-gradcam: DEVICE_TOOLS)
# pulls it in and loads them.
# doc/cuda.md.
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
ifeq ($(origin CUDA),undefined)
CUDA := $(if $(filter 1,$(SANITIZE)),0,$(if $(NVCC),1,0))
endif

ifeq ($(CUDA),1)
ifeq ($(NVCC),)
$(error CUDA=1 but nvcc is not on PATH nor in /usr/local/cuda/bin)
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))
# sm_90 machine code for Hopper plus compute_90 PTX for later GPUs.
# --fmad=false: a*b+c rounds twice, as the CPU kernels compiled as ISO C do.
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O2
# warnings are errors here as in the C build (WARN); NVCC_WARN= relaxes them
NVCC_WARN ?= -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter
ALL_NVCCFLAGS := -std=c++17 $(CUDA_ARCH) $(NVCCFLAGS) --fmad=false $(NVCC_WARN) -Xcompiler -fPIC \
	-D_GNU_SOURCE -Ilib -MMD -MP
CU_SRC := $(sort $(wildcard lib/*/*.cu))
CU_OBJ := $(CU_SRC:%.cu=$(B)/obj/%.cu.o)

$(B)/obj/%.cu.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(ALL_NVCCFLAGS) -c $< -o $@

$(B)/libfdnn.a: $(CU_OBJ)
NN_LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,--as-needed -lcudnn -lcublas \
	-lcudart -lstdc++ -Wl,--no-as-needed
-include $(CU_OBJ:.o=.d)
endif

# t_cuda and tools/cli_nn.c test FD_HAVE_CUDA (t_cuda skips without it;
# cli_nn.c refers to the CUDA table with it, which links the backend into the
# NN tools) and are rebuilt when the switch flips (the stamp changes only
# then). fd_backend.c needs no switch: it refers to the CUDA table weakly.
CUDA_SWITCHED := $(B)/obj/tests/unit/t_cuda.o $(B)/obj/tools/cli_nn.o
$(CUDA_SWITCHED): $(B)/cuda-switch
ifeq ($(CUDA),1)
$(CUDA_SWITCHED): ALL_CFLAGS += -DFD_HAVE_CUDA
endif
$(B)/cuda-switch: FORCE
	@mkdir -p $(@D)
	@echo 'CUDA=$(CUDA) $(NVCC)' | cmp -s - $@ || echo 'CUDA=$(CUDA) $(NVCC)' > $@
.PHONY: FORCE
FORCE:
