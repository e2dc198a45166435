# mk/fuzz.mk - libFuzzer targets (tests/fuzz/), issue 6.
#   make fuzz        each target for FUZZ_SECONDS (default 600) on top of the
#                    checked-in corpus; new inputs go to build/fuzz/work/<target>
#   make fuzz-merge  merge build/fuzz/work/<target> into tests/fuzz/corpus/<target>
#                    (keeps only inputs that add coverage)
#   make test-fuzz   (part of make test) replay of the corpus, then a smoke run
#                    of FUZZ_SMOKE_SECONDS (default 25) per target, one process
# A crash leaves its input in build/fuzz/artifacts/; replay it with
#   build/fuzz/<target> build/fuzz/artifacts/<file>

FUZZ_TARGETS := fuzz_heap_ops fuzz_table_check
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 25
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=c11 -g -O1 -Wall -Wextra -Werror -Isrc -Itests/fuzz \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SRC := $(LIB_SRC) $(HOSTED_SRC)
FUZZ_DEPS := $(FUZZ_SRC) $(LIB_HDR) $(HOSTED_HDR) tests/fuzz/fuzz_common.h
# -max_len: the ops target reads ~4 KiB of operations, the table target
# takes tables of up to 16 Ki blocks.
FUZZ_OPTS_fuzz_heap_ops := -max_len=4096
FUZZ_OPTS_fuzz_table_check := -max_len=16384
FUZZ_COMMON_OPTS = -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/artifacts/$(1)-

TEST_STEPS += test-fuzz

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_DEPS)
	@mkdir -p $(@D) $(BUILD)/fuzz/artifacts
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC) -lpthread

# Runs one target ($1) for $2 seconds; prints its executions and speed.
define fuzz_run
	@mkdir -p $(BUILD)/fuzz/work/$(1) $(BUILD)/fuzz/artifacts; \
	log=$(BUILD)/fuzz/$(1).log; \
	if ! $(BUILD)/fuzz/$(1) $(FUZZ_OPTS_$(1)) $(call FUZZ_COMMON_OPTS,$(1)) -max_total_time=$(2) \
	     $(BUILD)/fuzz/work/$(1) tests/fuzz/corpus/$(1) >$$log 2>&1; then \
	  tail -n 40 $$log; echo "$(1): FAILED (log: $$log; inputs in $(BUILD)/fuzz/artifacts/)"; exit 1; fi; \
	execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log); \
	speed=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $$log); \
	cov=$$(grep -o 'cov: [0-9]* ft: [0-9]*' $$log | tail -n 1); \
	secs=$$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' $$log); \
	echo "$(1): $$execs executions in $${secs:-?} s ($$speed exec/s), $$cov, corpus $$(ls tests/fuzz/corpus/$(1) | wc -l) + $$(ls $(BUILD)/fuzz/work/$(1) | wc -l) new inputs, no failure"
endef

# Every corpus file, each run once; any failed check aborts.
define fuzz_replay
	@n=$$(ls tests/fuzz/corpus/$(1) | wc -l); \
	if ! $(BUILD)/fuzz/$(1) $(FUZZ_OPTS_$(1)) tests/fuzz/corpus/$(1)/* >$(BUILD)/fuzz/$(1).replay.log 2>&1; then \
	  tail -n 40 $(BUILD)/fuzz/$(1).replay.log; echo "$(1): corpus replay FAILED"; exit 1; fi; \
	echo "$(1): replayed $$n corpus inputs, all checks passed"
endef

.PHONY: fuzz fuzz-merge test-fuzz fuzz-build
fuzz-build: $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))

test-fuzz: fuzz-build
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_replay,$(t))
	)
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t),$(FUZZ_SMOKE_SECONDS))
	)

fuzz: fuzz-build
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t),$(FUZZ_SECONDS))
	)

fuzz-merge: fuzz-build
	$(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/$(t) $(FUZZ_OPTS_$(t)) -merge=1 tests/fuzz/corpus/$(t) $(BUILD)/fuzz/work/$(t)
	)
