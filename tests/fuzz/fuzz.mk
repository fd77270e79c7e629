# fuzz.mk: libFuzzer targets. Every tests/fuzz/fuzz_NAME.c is built with clang,
# -fsanitize=fuzzer,address,undefined, against the library sources compiled the
# same way, into build-fuzz/fuzz_NAME; `make fuzz` runs each for FUZZ_SECONDS on
# a scratch copy of its seed corpus tests/fuzz/corpus/NAME/ (the seeds stay clean).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 10
FZ           := build-fuzz
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_SRC:tests/fuzz/%.c=$(FZ)/%)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARN) -g -O1 $(FUZZ_SAN) -fopenmp -Ilib $(DNNL_CFLAGS) -MMD -MP
FUZZ_LIB_OBJ := $(ALL_LIB_SRC:%.c=$(FZ)/obj/%.o)

$(FZ)/obj/%.o: %.c $(ONEDNN_STAMP) | $(DNNL_DEP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FZ)/fuzz_%: $(FZ)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -fopenmp -o $@ $^ $(NN_LDLIBS) $(LDLIBS)

-include $(FUZZ_LIB_OBJ:.o=.d) $(FZ)/obj/tests/fuzz/*.d

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@set -e; for f in $(FUZZ_BINS); do n=$${f#$(FZ)/fuzz_}; \
	  rm -rf $(FZ)/corpus/$$n && mkdir -p $(FZ)/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FZ)/crash-$$n- $(FZ)/corpus/$$n $$(test -d tests/fuzz/corpus/$$n && echo tests/fuzz/corpus/$$n) 2>&1 | tail -12; \
	  test $${PIPESTATUS[0]} -eq 0; done

.PHONY: fuzz fuzz-build
