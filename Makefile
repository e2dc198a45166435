# PeachOS memory subsystem - top-level Makefile.
#
#   make run    boot the demo kernel under QEMU (the main job)
#   make test   every test: unit, model, sanitizers, freestanding builds, boot, ...
#
# Each part of the project keeps its rules in mk/<part>.mk and adds its test
# steps to TEST_STEPS; `make test` runs them all and ends with "N passed, N failed".

SHELL := /bin/bash
BUILD := build
HOST_CC ?= gcc

LIB_CORE := src/memory/memory.c src/memory/heap/heap.c
LIB_SRC := $(LIB_CORE) src/memory/heap/heap_check.c src/memory/heap/heap_map.c \
           src/memory/heap/heap_index.c src/memory/heap/kheap.c src/memory/heap/kcache.c
LIB_HDR := $(wildcard src/*.h src/memory/*.h src/memory/heap/*.h)
HOSTED_SRC := src/hosted/kheap_port.c
HOSTED_HDR := src/hosted/kheap_hosted.h

WARN := -Wall -Wextra -Werror
HOST_CFLAGS := -std=c11 -O2 -g $(WARN) -Isrc
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

TEST_STEPS :=

.PHONY: all run test test-long bench fuzz coverage pictures debug clean deps-test

all: $(BUILD)/demo

include $(sort $(wildcard mk/*.mk))

test:
	@tools/run-steps $(TEST_STEPS)

clean:
	rm -rf $(BUILD)
