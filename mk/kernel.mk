# mk/kernel.mk - the bootable i686 demo kernel and its debugger.
#
#   make run        build build/kernel/peachos.elf and boot it under QEMU (TCG):
#                   self-test, statistics, heap map (coloured on a terminal);
#                   exit 0 when the kernel reports success. ARCH=x86_64: the
#                   64-bit kernel (mk/kernel64.mk) under qemu-system-x86_64;
#                   MEM=6G (default 128M): the machine's RAM
#   make kernel     just build build/kernel/peachos.elf
#   make debug      boot it with a GDB stub (port GDB_PORT, default 1234) and start gdb with
#                   tools/gdb/peachheap.py (heap-map, heap-stats, heap-check); ARCH=x86_64
#                   and MEM= as for run
#   make test-boot  boot with 128M (must pass) and with 64M (must refuse cleanly), then
#                   boot the panic build (build/kernel-panic/: PEACHOS_HEAP_PANIC_ON_BAD_FREE=1
#                   and SELFTEST_PANIC_PROBE, one bad free right after kheap_init: must panic)
#   make test-gdb   gdb in batch mode against the booted kernels (i686 at 128M, x86_64 at 6G)
#
# docs/kernel.md describes the layout, the port and the exit codes.

KERNEL_DIR := $(BUILD)/kernel
KERNEL_ELF := $(KERNEL_DIR)/peachos.elf
KERNEL_CC ?= clang
KERNEL_LD ?= ld.lld
# The heap: the seed's region, then the multiboot map's RAM above it
# (src/kernel/kheap_port_regions.c), as on x86_64.
KERNEL_HEAP_FLAGS := -DPEACHOS_KHEAP_REGIONS=8
KERNEL_CFLAGS := --target=i686-elf -march=i686 -std=c11 -ffreestanding -fno-pie -fno-pic -nostdlib $(ASSERT_FLAGS) \
                 -fno-stack-protector -fno-omit-frame-pointer -mno-sse -mno-mmx -O2 -g $(WARN) -Isrc $(KERNEL_HEAP_FLAGS)
KERNEL_ASFLAGS := --target=i686-elf -march=i686 -g -Wall -Werror
KERNEL_LDFLAGS := -m elf_i386 -nostdlib -static --no-pie --build-id=none -z max-page-size=4096 \
                  -T src/boot/linker.ld
# 64-bit division (__udivdi3, __umoddi3) and friends: clang's compiler-rt
# builtins for i386, libclang_rt.builtins-i386.a (Debian package
# libclang-rt-<version>-dev), found with --print-libgcc-file-name at link time.

KERNEL_C_SRC := $(wildcard src/kernel/*.c)
KERNEL_S_SRC := src/boot/boot.S
KERNEL_HDR := $(wildcard src/kernel/*.h)
KERNEL_OBJ := $(patsubst src/%.c,$(KERNEL_DIR)/%.o,$(KERNEL_C_SRC) $(LIB_SRC)) \
              $(patsubst src/%.S,$(KERNEL_DIR)/%.o,$(KERNEL_S_SRC))

# The panic build: the same sources with the panic setting on and the probe
# that makes one unannounced bad free after kheap_init (make test-boot). Its
# own directory, so the two builds never mix objects.
KERNEL_PANIC_DIR := $(BUILD)/kernel-panic
KERNEL_PANIC_ELF := $(KERNEL_PANIC_DIR)/peachos.elf
KERNEL_PANIC_FLAGS := -DPEACHOS_HEAP_PANIC_ON_BAD_FREE=1 -DSELFTEST_PANIC_PROBE
KERNEL_PANIC_OBJ := $(patsubst $(KERNEL_DIR)/%,$(KERNEL_PANIC_DIR)/%,$(KERNEL_OBJ))

# $(call kernel_link,<objects>): link an image at 1 MiB with the i386 builtins.
kernel_link = $(KERNEL_LD) $(KERNEL_LDFLAGS) -o $@ $(1) \
	    "$$($(KERNEL_CC) -m32 --rtlib=compiler-rt --print-libgcc-file-name)"

QEMU := qemu-system-i386
QEMU_TIMEOUT ?= 60
QEMU_FLAGS := -display none -net none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04
QEMU_MEM ?= 128M
GDB_PORT ?= 1234
# make run ARCH=x86_64 MEM=6G. The 64-bit image's path is mk/kernel64.mk's
# KERNEL64_ELF (that fragment is read after this one).
ARCH ?= i686
# Another build system's ARCH (amd64, x86, ...) in the environment is not ours.
ifeq ($(origin ARCH)$(filter $(ARCH),i686 x86_64),environment)
ARCH := i686
endif
MEM ?= $(QEMU_MEM)
ifeq ($(ARCH),x86_64)
RUN_ELF := $(BUILD)/kernel64/peachos64.elf
RUN_QEMU := qemu-system-x86_64
else
RUN_ELF := $(KERNEL_ELF)
RUN_QEMU := $(QEMU)
endif

.PHONY: kernel test-boot test-gdb
TEST_STEPS += test-boot test-gdb

kernel: $(KERNEL_ELF)

# The toolchain, once: clang, ld.lld (Debian: lld) and the i386 builtins.
$(KERNEL_DIR)/.toolchain:
	@mkdir -p $(@D)
	@command -v $(KERNEL_CC) >/dev/null || tools/need clang
	@command -v $(KERNEL_LD) >/dev/null || tools/need lld
	@rt=$$($(KERNEL_CC) -m32 --rtlib=compiler-rt --print-libgcc-file-name); \
	if [ ! -f "$$rt" ]; then tools/need libclang-rt-$$($(KERNEL_CC) -dumpversion | cut -d. -f1)-dev || exit 1; fi
	@touch $@

$(KERNEL_DIR)/%.o: src/%.c $(LIB_HDR) $(KERNEL_HDR) mk/kernel.mk | $(KERNEL_DIR)/.toolchain
	@mkdir -p $(@D)
	$(KERNEL_CC) $(KERNEL_CFLAGS) -c -o $@ $<

$(KERNEL_DIR)/%.o: src/%.S src/boot/multiboot_entry.inc mk/kernel.mk | $(KERNEL_DIR)/.toolchain
	@mkdir -p $(@D)
	$(KERNEL_CC) $(KERNEL_ASFLAGS) -c -o $@ $<

$(KERNEL_ELF): $(KERNEL_OBJ) src/boot/linker.ld
	$(call kernel_link,$(KERNEL_OBJ))
	@size=$$(stat -c %s $@); echo "kernel: $@ ($$size bytes)"

$(KERNEL_PANIC_DIR)/%.o: src/%.c $(LIB_HDR) $(KERNEL_HDR) mk/kernel.mk | $(KERNEL_DIR)/.toolchain
	@mkdir -p $(@D)
	$(KERNEL_CC) $(KERNEL_CFLAGS) $(KERNEL_PANIC_FLAGS) -c -o $@ $<

$(KERNEL_PANIC_DIR)/%.o: src/%.S src/boot/multiboot_entry.inc mk/kernel.mk | $(KERNEL_DIR)/.toolchain
	@mkdir -p $(@D)
	$(KERNEL_CC) $(KERNEL_ASFLAGS) -c -o $@ $<

$(KERNEL_PANIC_ELF): $(KERNEL_PANIC_OBJ) src/boot/linker.ld
	$(call kernel_link,$(KERNEL_PANIC_OBJ))
	@size=$$(stat -c %s $@); echo "kernel: $@ ($$size bytes, panic build)"

# The README's main job. qemu's exit status: (value written to port 0xf4 << 1) | 1.
run: $(RUN_ELF)
	@case "$(ARCH)" in i686|x86_64) ;; *) echo "run: ARCH=$(ARCH): i686 (default) or x86_64"; exit 1;; esac
	@tools/need qemu-system-x86
	@if [ -t 1 ]; then filter=tools/colorize-map; else filter=cat; fi; \
	echo "booting $(RUN_ELF) under $(RUN_QEMU) -m $(MEM) (TCG, timeout $(QEMU_TIMEOUT)s)"; \
	start=$$(date +%s%N); \
	timeout $(QEMU_TIMEOUT) $(RUN_QEMU) -kernel $(RUN_ELF) -m $(MEM) -serial stdio $(QEMU_FLAGS) \
	    </dev/null | $$filter; \
	rc=$${PIPESTATUS[0]}; \
	ms=$$(( ($$(date +%s%N) - start) / 1000000 )); secs=$$((ms / 1000)).$$(printf %03d $$((ms % 1000))); \
	case $$rc in \
	33) echo "run: kernel self-test passed (qemu exit 33) in $${secs}s"; exit 0;; \
	35) echo "run: FAILED: a kernel self-test case failed (qemu exit 35)";; \
	37) echo "run: FAILED: the kernel refused to boot (qemu exit 37): see its message above";; \
	39) echo "run: FAILED: kernel panic (qemu exit 39): see the PANIC line above";; \
	41) echo "run: FAILED: kheap_init failed (qemu exit 41): see its message above";; \
	124) echo "run: FAILED: timeout after $(QEMU_TIMEOUT)s: the kernel hangs (qemu killed)";; \
	0) echo "run: FAILED: qemu exit 0: triple fault or reset (the kernel never reached isa-debug-exit)";; \
	*) echo "run: FAILED: unexpected qemu exit status $$rc";; \
	esac; exit 1

test-boot: $(KERNEL_ELF) $(KERNEL_PANIC_ELF)
	@tools/need qemu-system-x86
	tests/boot/test-boot.sh $(KERNEL_ELF) $(KERNEL_PANIC_ELF)

# Both kernels under gdb, several regions each (i686 -m 128M: two; x86_64
# -m 6G: three, one above 4 GiB).
test-gdb: $(KERNEL_ELF) $(BUILD)/kernel64/peachos64.elf
	@tools/need qemu-system-x86 gdb
	tests/gdb/test-gdb.sh $(KERNEL_ELF)
	tests/gdb/test-gdb.sh $(BUILD)/kernel64/peachos64-debug.elf x86_64 $(BUILD)/kernel64/peachos64.elf 6G

# gdb reads the symbols of the ELF it is given: the 64-bit kernel's are in
# peachos64-debug.elf (QEMU boots its ELF32 copy). The CPU starts in 32-bit
# mode, so gdb is told the architecture, and a hardware breakpoint holds
# across the switch to long mode.
ifeq ($(ARCH),x86_64)
DEBUG_SYMBOLS := $(BUILD)/kernel64/peachos64-debug.elf
DEBUG_GDB_ARGS := -ex 'set architecture i386:x86-64'
DEBUG_BREAK := hbreak
else
DEBUG_SYMBOLS := $(KERNEL_ELF)
DEBUG_GDB_ARGS :=
DEBUG_BREAK := break
endif

debug: $(RUN_ELF)
	@tools/need qemu-system-x86 gdb
	@mkdir -p $(BUILD)/gdb
	@echo "debug: $(RUN_QEMU) -m $(MEM) waits for gdb on :$(GDB_PORT); the kernel's serial output goes to $(BUILD)/gdb/serial.log"
	@echo "debug: try: $(DEBUG_BREAK) kernel_selftest_done, continue, heap-stats, heap-map, heap-check (every region; --region=K for one)"
	@$(RUN_QEMU) -kernel $(RUN_ELF) -m $(MEM) -serial file:$(BUILD)/gdb/serial.log $(QEMU_FLAGS) \
	    -S -gdb tcp:127.0.0.1:$(GDB_PORT) & \
	qpid=$$!; trap 'kill $$qpid 2>/dev/null' EXIT; \
	gdb -q -x tools/gdb/peachheap.py $(DEBUG_GDB_ARGS) -ex 'target remote 127.0.0.1:$(GDB_PORT)' $(DEBUG_SYMBOLS); \
	kill $$qpid 2>/dev/null; wait $$qpid 2>/dev/null; true
