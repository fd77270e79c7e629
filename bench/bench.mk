# bench.mk: benchmark binaries (included by the top-level Makefile).
#   make bench-deps   what the benchmarks against a tuned PyTorch need on a fresh
#                     machine: tcmalloc (scripts/deps.sh bench) and PyPI's PyTorch in
#                     .venv-torch (bench/torch-venv.sh create), each only if missing
bench-deps:
	@scripts/deps.sh bench
	@bench/torch-venv.sh python >/dev/null 2>&1 || bench/torch-venv.sh create

.PHONY: bench-deps

#   make bench-conv   fd conv2d vs PyTorch, ResNet18 + depthwise shapes (a few minutes)
$(B)/bench/conv: bench/conv.c $(B)/libfdnn.a $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libfdnn.a $(B)/libfd.a $(NN_LDLIBS) $(LDLIBS)

bench-conv: $(B)/bench/conv
	/usr/bin/python3 bench/conv_vs_torch.py --fd $(B)/bench/conv --threads 2

.PHONY: bench-conv

#   make bench-onednn   Debian's oneDNN 2.6.3 (PyTorch 1.13, and fd's bench/conv) vs PyPI
#                       PyTorch's oneDNN 3.x: depthwise, 1x1 on small maps, bf16 conv and
#                       matmul, primitive times from oneDNN's verbose mode (bench/onednn_vs.py,
#                       doc/onednn.md; several minutes)
bench-onednn: $(B)/bench/conv bench-deps
	/usr/bin/python3 bench/onednn_vs.py --fd $(B)/bench/conv

.PHONY: bench-onednn

#   make bench-onednn3  Debian's oneDNN 2.6 vs the 3.2 of ONEDNN=3 (PyPI's onednn-cpu-gomp) on
#                       ResNet's 3x3 forward convolutions, primitives alone (bench/onednn3.sh;
#                       doc/onednn.md "AVX2 CPUs"; a minute)
bench-onednn3:
	bench/onednn3.sh

.PHONY: bench-onednn3

#   make bench-onednn-ab  fd on oneDNN 2.6 vs fd on oneDNN 3.2 (ONEDNN=2 / ONEDNN=3), the seven
#                         models, training and inference img/s and peak memory, alternated
#                         (bench/onednn_ab.sh; doc/onednn.md "oneDNN 3 on AVX2 CPUs"; ~30 min);
#                         VERSIONS="2 3.2 3.7" adds 3.7 built from Debian's source (~32 min once)
bench-onednn-ab:
	bench/onednn_ab.sh

.PHONY: bench-onednn-ab

#   make bench-mbfront   fd's fused MBConv front (expand + depthwise) vs oneDNN's two convolutions,
#                        and its back (SE + projection + residual) vs fd_se_infer + oneDNN's projection,
#                        EfficientNet-B0 and MobileNetV3-Small shapes at 224 px (bench/mbfront.c,
#                        bench/mbback.c; a minute)
$(B)/bench/mbfront: bench/mbfront.c $(B)/libfdnn.a $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libfdnn.a $(B)/libfd.a $(NN_LDLIBS) $(LDLIBS)

$(B)/bench/mbback: bench/mbback.c $(B)/libfdnn.a $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libfdnn.a $(B)/libfd.a $(NN_LDLIBS) $(LDLIBS)

bench-mbfront: $(B)/bench/mbfront $(B)/bench/mbback
	$(B)/bench/mbfront 2 5
	$(B)/bench/mbback 2 5

.PHONY: bench-mbfront

#   make bench-normpool   fd batchnorm2d / pooling vs PyTorch, ResNet18 shapes, and BN + activation channels last (seconds)
$(B)/bench/normpool: bench/normpool.c $(B)/libfdnn.a $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libfdnn.a $(B)/libfd.a $(NN_LDLIBS) $(LDLIBS)

bench-normpool: $(B)/bench/normpool
	/usr/bin/python3 bench/normpool_vs_torch.py --fd $(B)/bench/normpool --threads 2

.PHONY: bench-normpool

#   make bench-loader   fd_loader vs torchvision DataLoader, 224x224, batch 32, augment.json, 2 threads
$(B)/bench/loader: bench/loader.c $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libfd.a $(LDLIBS)

bench-loader: $(B)/bench/loader
	/usr/bin/python3 bench/loader_vs_torch.py --fd $(B)/bench/loader --threads 2

.PHONY: bench-loader

#   make bench-models   every registered model, fd vs torchvision: training and inference
#                       img/s, peak memory; 224x224 (+ simplecnn, resnet18 at 128), batch 32,
#                       2 threads (about 10 minutes; bench/results/models.md)
$(B)/bench/models: bench/models.c $(B)/libfdnn.a $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libfdnn.a $(B)/libfd.a $(NN_LDLIBS) $(LDLIBS)

bench-models: $(B)/bench/models
	bench/models.sh $(B)/bench/models

.PHONY: bench-models

#   make bench-tuned [MODELS="resnet18@224 ..."] [REPS=3] [REPS_SLOW=1] [TORCH_VENV=.venv-torch]
#   fd fp32 (and bf16 when bench/models has it) vs PyTorch 1.13 and PyPI's 2.x, each
#   default and channels_last + tcmalloc, and 2.x's bf16 autocast: training and inference
#   img/s, peak memory, every ratio (bench/tuned.sh, doc/bench.md; about 40 minutes)
bench-tuned: $(B)/bench/models bench-deps
	bench/tuned.sh $(B)/bench/models

.PHONY: bench-tuned
#   make bench-model ARCH=convnext_tiny   one fd model vs torchvision: train step and inference img/s, 224x224, batch 32, 2 threads
$(B)/bench/model: bench/model.c $(B)/libfdnn.a $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libfdnn.a $(B)/libfd.a $(NN_LDLIBS) $(LDLIBS)

# bench/gpu: one fd model on CUDA device 0 (train step and inference img/s,
# input on the device); a CUDA build only. scripts/device-check.sh runs it
# beside bench/gpu_vs_torch.py (PyTorch on the same GPU).
ifeq ($(CUDA),1)
$(B)/bench/gpu: bench/gpu.c $(B)/libfdnn.a $(B)/libfd.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libfdnn.a $(B)/libfd.a $(NN_LDLIBS) $(LDLIBS)
endif

ARCH ?= convnext_tiny
bench-model: $(B)/bench/model
	/usr/bin/python3 bench/model_vs_torch.py --fd $(B)/bench/model --arch $(ARCH) --threads 2

.PHONY: bench-model

#   make bench-train [BENCH_MODEL=resnet18 BENCH_GROUPS=200 BENCH_SIZE=224 BENCH_AUG=1 BENCH_WINO=0]
#   one epoch of fd-train vs a PyTorch DataLoader script reading the JPEGs (bench/train_vs_torch.sh;
#   BENCH_WINO=1: fd trains with "winograd": true)
BENCH_MODEL ?= resnet18
BENCH_GROUPS ?= 200
BENCH_SIZE ?= 224
BENCH_AUG ?= 1
BENCH_WINO ?= 0
bench-train: tools bench-deps
	AUG=$(BENCH_AUG) WINO=$(BENCH_WINO) bench/train_vs_torch.sh $(BENCH_MODEL) $(BENCH_GROUPS) $(BENCH_SIZE)

#   make bench-fmnist [BENCH_EPOCHS=5] [PRECISION=bf16]: fd-train vs its PyTorch twin on Fashion-MNIST (bench/fashion_mnist.sh)
BENCH_EPOCHS ?= 5
bench-fmnist: tools
	PRECISION=$(or $(PRECISION),fp32) bench/fashion_mnist.sh $(BENCH_EPOCHS) 2

.PHONY: bench-train bench-fmnist

#   make bench-gradcam: fd-gradcam vs the grad-cam package's GradCAM over PyTorch,
#   every architecture at 224, 32 images, batch 16, 2 threads (bench/gradcam.sh)
bench-gradcam: tools
	bench/gradcam.sh 224 32 16 2

.PHONY: bench-gradcam

#   make bench-peak   this machine's fp32 multiply-add peak (AVX-512 or AVX2 FMA chains on
#                     2 threads, best of 5; seconds): the ceiling of every fp32 convolution
#                     (bench/results/tuned.md "fp32 ceiling"); on a CPU with AVX512-BF16
#                     also the bf16 one (VDPBF16PS chains)
$(B)/bench/peak: bench/peak.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $<

bench-peak: $(B)/bench/peak
	$(B)/bench/peak 2 5
	if grep -qw avx512_bf16 /proc/cpuinfo; then $(B)/bench/peak 2 5 bf16; fi

.PHONY: bench-peak
