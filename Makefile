# PeachOS memory subsystem - top-level Makefile.
#
#   make run    boot the demo kernel under QEMU (the main job)
#   make test   every test: unit, model, sanitizers, freestanding builds, boot, ...
#
# Each part of the project keeps its rules in mk/<part>.mk and adds its test
# steps to TEST_STEPS; `make test` runs them all (tools/run-steps) and ends
# with "N passed, N failed" (docs/testing.md says what follows it on failure).
#
# Packages: every rule that uses an outside tool or library has an order-only
# prerequisite *-deps whose recipe is `tools/need PACKAGE...` (installs the
# missing Debian packages as root, else prints the command and fails), so
# each step installs what it uses before its first use, on its own, in any
# order. The shared ones are here; each mk/<part>.mk adds its own to
# TEST_PACKAGES too, and `make deps-test` installs all of them at once.

SHELL := /bin/bash
BUILD := build
HOST_CC ?= gcc

LIB_CORE := src/memory/memory.c src/memory/heap/heap.c src/memory/heap/heap_table.c
LIB_SRC := $(LIB_CORE) src/memory/heap/heap_check.c src/memory/heap/heap_map.c src/memory/heap/multiheap.c \
           src/memory/heap/heap_index.c src/memory/heap/heap_index_tree.c src/memory/heap/heap_report.c src/memory/heap/kheap.c src/memory/heap/kheap_init.c src/memory/heap/kheap_regions.c src/memory/heap/kheap_check.c \
           src/memory/heap/kcache.c src/memory/heap/kcache_front.c src/memory/heap/kcache_check.c src/memory/heap/kcache_cpu.c src/memory/heap/kvmalloc.c \
           src/memory/heap/kheap_vmalloc.c src/memory/heap/heap_course.c
LIB_HDR := $(wildcard src/*.h src/memory/*.h src/memory/heap/*.h)
# The block layer alone (no kernel heap, no caches): what the table model links.
LIB_BLOCK_SRC := $(filter-out src/memory/heap/kheap.c src/memory/heap/kheap_init.c src/memory/heap/kheap_regions.c src/memory/heap/kheap_check.c \
                 src/memory/heap/kcache.c src/memory/heap/kcache_front.c src/memory/heap/kcache_check.c src/memory/heap/kcache_cpu.c src/memory/heap/multiheap.c \
                 src/memory/heap/heap_course.c,$(LIB_SRC))
HOSTED_SRC := src/hosted/kheap_port.c
HOSTED_HDR := src/hosted/kheap_hosted.h src/hosted/kheap_port_cpu.h

WARN := -Wall -Wextra -Werror
HOST_CFLAGS := -std=c11 -O2 -g $(WARN) -Isrc
# The library's precondition checks, on in every test build (heap_config.h).
ASSERT_FLAGS := '-DPEACHOS_HEAP_ASSERT(c)=((c) ? (void)0 : __builtin_trap())'
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The per-CPU magazine build (PEACHOS_KCACHE_MAGAZINES, heap_config.h), with
# the hosted port's per-CPU section inline (src/hosted/kheap_port_cpu.h).
MAG_FLAGS := -DPEACHOS_KCACHE_MAGAZINES=1 '-DPEACHOS_KHEAP_PORT_CPU_HEADER="hosted/kheap_port_cpu.h"'

TEST_STEPS :=

# Debian 12 packages. gcc only recommends libc6-dev (headers, libpthread,
# crt files), which --no-install-recommends leaves out; binutils gives as,
# ld and nm. clang depends on libc6-dev, binutils, libgcc-12-dev and
# libstdc++-12-dev (libFuzzer links it), but not on its runtimes: ASan,
# UBSan, TSan, libFuzzer and the i386 builtins are in libclang-rt-14-dev,
# pulled in by libclang-rt-dev (the runtime of Debian's default clang).
# ld.lld is in lld.
GCC_PACKAGES := gcc libc6-dev binutils
CLANG_PACKAGES := clang lld libclang-rt-dev
PYTHON_PACKAGES := python3
# mk/kernel.mk (test-boot, test-gdb) installs its own: clang, lld and
# libclang-rt-<clang major>-dev before compiling, qemu-system-x86 and gdb
# before booting; listed here for deps-test.
TEST_PACKAGES := $(GCC_PACKAGES) $(CLANG_PACKAGES) $(PYTHON_PACKAGES) qemu-system-x86 gdb

.PHONY: all run test test-long bench fuzz coverage pictures debug clean deps-test \
        gcc-deps clang-deps python-deps host-deps

all: $(BUILD)/demo

include $(sort $(wildcard mk/*.mk))

test:
	@tools/run-steps $(TEST_STEPS)

# HOST_CC's packages: gcc's, or clang's when HOST_CC is a clang.
host-deps: $(if $(filter clang%,$(notdir $(HOST_CC))),clang-deps,gcc-deps)

gcc-deps:
	@tools/need $(GCC_PACKAGES)

# The second line is for a clang on PATH other than Debian's default: the
# runtime of its own major version.
clang-deps:
	@tools/need $(CLANG_PACKAGES)
	@tools/need libclang-rt-$$(clang -dumpversion | cut -d. -f1)-dev

python-deps:
	@tools/need $(PYTHON_PACKAGES)

# Everything `make test` installs, in one apt-get run (or, not as root, one
# command to run).
deps-test:
	@tools/need $(sort $(TEST_PACKAGES))
	@tools/need libclang-rt-$$(clang -dumpversion | cut -d. -f1)-dev

clean:
	rm -rf $(BUILD)
