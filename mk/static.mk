# mk/static.mk - static analysis of src/: `make test-static`.
#
#   cppcheck    --enable=warning,style,performance,portability, twice: the
#               library and the hosted port for the host (64-bit), then the
#               library and the kernel's C files for i686 (--platform=unix32,
#               -D__i386__). Suppressions: inline (// cppcheck-suppress, each
#               with its reason above it) and tests/static/cppcheck-suppressions.txt.
#   clang-tidy  the checked-in .clang-tidy (its comments say what is enabled
#               and why some checks are off); warnings are errors. Library and
#               hosted port with host flags, src/kernel/*.c and src/boot/*.c
#               with the kernel's (--target=i686-elf -ffreestanding). Checks
#               turned off for one file only are in STATIC_TIDY_OFF_<file>
#               below, each with its reason.
# Any finding fails the step. Logs in build/static/. About 20 s.

STATIC_DIR := $(BUILD)/static
STATIC_HOST_SRC := $(LIB_SRC) $(HOSTED_SRC)
STATIC_KERNEL_SRC := $(sort $(wildcard src/kernel/*.c src/boot/*.c))
STATIC_HOST_FLAGS := -std=c11 -Isrc
STATIC_KERNEL_FLAGS := --target=i686-elf -m32 -march=i686 -std=c11 -ffreestanding -fno-pie -Isrc
# The x86_64 demo kernel's own C files, with its flags, and regions_print.c
# again: its window section is compiled only there (PEACHOS_KHEAP_VMALLOC).
STATIC_KERNEL64_SRC := $(sort $(wildcard src/kernel64/*.c)) src/kernel/regions_print.c
STATIC_KERNEL64_FLAGS := --target=x86_64-elf -std=c11 -ffreestanding -fno-pie -mno-red-zone -Isrc -DPEACHOS_KHEAP_REGIONS=8 \
                         -DPEACHOS_KHEAP_VMALLOC=1
# The library's window part (PEACHOS_KHEAP_VMALLOC=1; empty or left out by
# default), analysed again in that configuration, with one region and with
# several, as the x86_64 kernel builds it.
STATIC_VMALLOC_SRC := src/memory/heap/kheap.c src/memory/heap/kheap_init.c src/memory/heap/kheap_vmalloc.c src/memory/heap/kheap_check.c
STATIC_VMALLOC_FLAGS := $(STATIC_HOST_FLAGS) -DPEACHOS_KHEAP_VMALLOC=1
STATIC_VMALLOC_REGIONS_FLAGS := $(STATIC_VMALLOC_FLAGS) -DPEACHOS_KHEAP_REGIONS=8
# -U: the header a port may name for its inline per-CPU section exists only
# in the magazine build (the Makefile's MAG_FLAGS name the hosted one), so
# cppcheck must not try a configuration with the macro but no file.
CPPCHECK_FLAGS := --enable=warning,style,performance,portability --std=c11 --inline-suppr \
                  -UPEACHOS_KHEAP_PORT_CPU_HEADER \
                  --suppressions-list=tests/static/cppcheck-suppressions.txt --error-exitcode=1 -q -Isrc \
                  --template='{file}:{line}:{column}: {severity}: {message} [{id}]'

# Per-file exceptions (kernel files belong to the kernel's part; each line
# says why the check does not apply there):
#  - the self-test frees bad pointers on purpose (a constant address, a
#    pointer already freed) to show that kfree refuses them; the analyzer
#    models kfree as free() and reports exactly those calls.
STATIC_TIDY_OFF_src/kernel/selftest.c := -clang-analyzer-unix.Malloc
#  - the same in the x86_64 kernel's window case: an interior pointer into
#    the window is freed on purpose, to show that kfree refuses it.
STATIC_TIDY_OFF_src/kernel64/selftest_vmalloc64.c := -clang-analyzer-unix.Malloc

TEST_STEPS += test-static

.PHONY: test-static static-deps

# clang-tidy brings clang's own headers (libclang-common-14-dev); the host
# files include libc headers (stdio.h, pthread.h): libc6-dev.
STATIC_PACKAGES := cppcheck clang-tidy libc6-dev
TEST_PACKAGES += $(STATIC_PACKAGES)

static-deps:
	@tools/need $(STATIC_PACKAGES)

# $(call static_tidy,<file>,<flags>): one clang-tidy run (with the file's
# exceptions), logged; a finding adds the file to $bad.
static_tidy = n=$$((n+1)); clang-tidy --quiet --config-file=.clang-tidy $(if $(STATIC_TIDY_OFF_$(1)),--checks=$(STATIC_TIDY_OFF_$(1))) \
	$(1) -- $(2) >> $(STATIC_DIR)/clang-tidy.log 2>&1 || bad="$$bad $(1)";

test-static: | static-deps
	@set -u; mkdir -p $(STATIC_DIR); rm -f $(STATIC_DIR)/*.log; bad=""; n=0; start=$$(date +%s); \
	cppcheck $(CPPCHECK_FLAGS) $(STATIC_HOST_SRC) > $(STATIC_DIR)/cppcheck.log 2>&1 || bad="$$bad cppcheck(host)"; \
	cppcheck $(CPPCHECK_FLAGS) --platform=unix32 -D__i386__ -U__x86_64__ $(LIB_SRC) $(STATIC_KERNEL_SRC) \
	  >> $(STATIC_DIR)/cppcheck.log 2>&1 || bad="$$bad cppcheck(i686)"; \
	$(foreach f,$(STATIC_HOST_SRC),$(call static_tidy,$(f),$(STATIC_HOST_FLAGS))) \
	$(foreach f,$(STATIC_KERNEL_SRC),$(call static_tidy,$(f),$(STATIC_KERNEL_FLAGS))) \
	$(foreach f,$(STATIC_KERNEL64_SRC),$(call static_tidy,$(f),$(STATIC_KERNEL64_FLAGS))) \
	$(foreach f,$(STATIC_VMALLOC_SRC),$(call static_tidy,$(f),$(STATIC_VMALLOC_FLAGS))) \
	$(foreach f,$(STATIC_VMALLOC_SRC),$(call static_tidy,$(f),$(STATIC_VMALLOC_REGIONS_FLAGS))) \
	cppcheck $(CPPCHECK_FLAGS) -DPEACHOS_KHEAP_VMALLOC=1 $(STATIC_VMALLOC_SRC) \
	  >> $(STATIC_DIR)/cppcheck.log 2>&1 || bad="$$bad cppcheck(vmalloc)"; \
	cppcheck $(CPPCHECK_FLAGS) -DPEACHOS_KHEAP_VMALLOC=1 -DPEACHOS_KHEAP_REGIONS=8 $(STATIC_VMALLOC_SRC) \
	  >> $(STATIC_DIR)/cppcheck.log 2>&1 || bad="$$bad cppcheck(vmalloc, regions)"; \
	cppcheck $(CPPCHECK_FLAGS) --platform=unix64 -D__x86_64__ -U__i386__ -DPEACHOS_KHEAP_REGIONS=8 -DPEACHOS_KHEAP_VMALLOC=1 \
	  $(STATIC_KERNEL64_SRC) \
	  >> $(STATIC_DIR)/cppcheck.log 2>&1 || bad="$$bad cppcheck(x86_64 kernel)"; \
	checks=$$(clang-tidy --list-checks src/memory/memory.c -- $(STATIC_HOST_FLAGS) 2>/dev/null | grep -c '^    '); \
	cat $(STATIC_DIR)/cppcheck.log; grep -E 'warning:|error:' $(STATIC_DIR)/clang-tidy.log || true; \
	if [ -n "$$bad" ]; then echo "test-static: FAILED:$$bad (logs in $(STATIC_DIR)/)"; exit 1; fi; \
	echo "test-static: cppcheck (host and i686) and clang-tidy ($$checks checks) clean on $$n files" \
	     "($(words $(STATIC_HOST_SRC)) library/hosted, $(words $(STATIC_KERNEL_SRC)) kernel, $(words $(STATIC_KERNEL64_SRC)) x86_64 kernel, $(words $(STATIC_VMALLOC_SRC)) twice more with the window) in $$(( $$(date +%s) - start )) s"
