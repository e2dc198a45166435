# mk/pictures.mk - the heapmap tool (tools/heapmap), `make pictures` and the
# test-heapmap step.
#
#   make build/tools/heapmap   the tool (needs libcairo2-dev; tools/need installs it)
#   make pictures              renders docs/pictures/*.png|svg (commit them)
#   make test-heapmap          checks the tool on known tables (raw, hex, text), the
#                              bench traces it replays, and tools/colorize-map

HEAPMAP := $(BUILD)/tools/heapmap
HEAPMAP_SRC := $(wildcard tools/heapmap/*.c)
HEAPMAP_HDR := $(wildcard tools/heapmap/*.h)
# The heap itself, without memory.c (the host's libc memset/memcpy serve
# cairo and the heap alike) and without kheap.c (no port needed: replay
# drives heap_create_indexed directly).
HEAPMAP_LIB := src/memory/heap/heap.c src/memory/heap/heap_table.c src/memory/heap/heap_check.c src/memory/heap/heap_map.c \
               src/memory/heap/heap_index.c src/memory/heap/heap_index_tree.c
PICTURES := docs/pictures
PICTURES_WORK := $(BUILD)/tools/pictures

TEST_STEPS += test-heapmap

.PHONY: heapmap-deps pictures test-heapmap

# cairo through pkg-config; gnuplot for the replay timelines; python3 runs
# test_heapmap.py.
HEAPMAP_PACKAGES := libcairo2-dev pkg-config gnuplot-nox $(PYTHON_PACKAGES)
TEST_PACKAGES += $(HEAPMAP_PACKAGES)

heapmap-deps: host-deps
	@tools/need $(HEAPMAP_PACKAGES)

$(HEAPMAP): $(HEAPMAP_SRC) $(HEAPMAP_HDR) $(HEAPMAP_LIB) $(LIB_HDR) | heapmap-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $$(pkg-config --cflags cairo) -o $@ $(HEAPMAP_SRC) $(HEAPMAP_LIB) \
	  $$(pkg-config --libs cairo) -lm

# A handful of pictures (each as PNG and SVG), all from fixed inputs and
# seeds, so re-running gives the same files. The W1 and W3 pictures replay
# the benchmark's own traces: bench-peach --trace-out writes the ops that
# `make bench` replays (same generator, same seed), here into
# $(PICTURES_WORK), and heapmap replays them on the hosted heap. The 16 MiB
# W1 traces stop after $(PICTURES_TRACE_OPS) ops (warm-up, settle and the
# start of the timed pass); the others are whole.
# pick OUT LABEL PREFIX NAME: copy the snapshot whose label starts with
# LABEL (from heapmap's output OUT) to docs/pictures/NAME.png|svg.
PICTURES_BENCH := $(BENCH_DIR)/bench-peach
PICTURES_TRACE_OPS := 12000

pictures: $(HEAPMAP) $(PICTURES_BENCH)
	@set -e; w=$(PICTURES_WORK); bench=$(PICTURES_BENCH); mkdir -p $$w $(PICTURES); rm -f $$w/*; \
	pick() { op=$$(sed -n "s/^snapshot op=\([0-9]*\) label=\"$$2.*/\1/p" $$1 | head -n 1); \
	  if [ -z "$$op" ]; then echo "pictures: no snapshot \"$$2\" in $$1" >&2; exit 1; fi; \
	  for e in png svg; do cp $$3-op$$(printf %06d $$op).$$e $(PICTURES)/$$4.$$e; done; \
	  echo "pictures: $(PICTURES)/$$4.png = $$1, op $$op: $$2"; }; \
	$(HEAPMAP) tools/heapmap/examples/encoding.hex --labels --title "Table encoding: plain and cache allocations" \
	  -o $(PICTURES)/encoding-example > /dev/null; \
	$(HEAPMAP) tools/heapmap/test/corrupt.hex --labels --title "What heapmap draws as invalid" \
	  -o $(PICTURES)/encoding-invalid > /dev/null; \
	for occ in 50 90; do \
	  $$bench --workload w1-$$occ --blocks 4096 --trace-ops $(PICTURES_TRACE_OPS) \
	    --trace-out $$w/bench-w1-$$occ.trace; \
	done; \
	$(HEAPMAP) replay --workload $$w/bench-w1-50.trace --no-plot --dat $$w/w1-50.dat -o $$w/w1-50 > $$w/w1-50.out; \
	pick $$w/w1-50.out "end of settle" $$w/w1-50 w1-50; \
	$(HEAPMAP) replay --workload $$w/bench-w1-90.trace --dat $$w/w1-90-timeline.dat -o $$w/w1-90 > $$w/w1-90.out; \
	pick $$w/w1-90.out "end of settle" $$w/w1-90 w1-90; \
	for e in png svg; do cp $$w/w1-90-timeline.$$e $(PICTURES)/w1-timeline.$$e; done; \
	$$bench --workload w3 --blocks 4096 --trace-out $$w/bench-w3.trace; \
	$(HEAPMAP) replay --workload $$w/bench-w3.trace --no-plot --dat $$w/w3.dat -o $$w/w3 > $$w/w3.out; \
	pick $$w/w3.out "64 blocks placed" $$w/w3 w3-end; \
	$$bench --workload w1-90 --blocks 25600 --trace-out $$w/bench-w1-90-100mib.trace; \
	$(HEAPMAP) replay --workload $$w/bench-w1-90-100mib.trace --no-plot --dump $$w/w1-100mib.bin \
	  --dat $$w/w1-100mib.dat -o $$w/w1-100mib > $$w/w1-100mib.out; \
	grep -h '^replay ' $$w/*.out; \
	{ echo "PeachOS: kheap ready, 25600 blocks"; echo "W1 at 90%: done"; \
	  $(HEAPMAP) text $$w/w1-100mib.bin --per-char 0 --width 64 --lines 16; echo "halted."; } > $$w/serial.txt; \
	$(HEAPMAP) $$w/serial.txt --title "A text map from serial output: 100 MiB heap after the benchmark's W1 at 90%, 25 blocks per cell" \
	  -o $(PICTURES)/serial-text-map > /dev/null; \
	$(HEAPMAP) replay --workload tools/heapmap/examples/mixed.trace --no-plot --dat $$w/mixed.dat \
	  -o $$w/mixed > $$w/mixed.out; \
	pick $$w/mixed.out "end of the example trace" $$w/mixed trace-example; \
	$(HEAPMAP) regions tools/heapmap/examples/regions-6g.log --title "x86_64 kernel at -m 6G" \
	  -o $(PICTURES)/regions-6g > /dev/null; \
	ls -l $(PICTURES); \
	du -cb $(PICTURES)/*.png $(PICTURES)/*.svg | tail -1 | awk '{ if ($$1 > 2000000) { print "pictures: " $$1 " bytes, over 2 MB"; exit 1 } print "pictures: " $$1 " bytes" }'

# test_heapmap.py also checks that bench-peach's traces (--trace-out)
# replay in heapmap to the table bench-peach ended with (--dump-table), and
# that tools/colorize-map colours a map (what `make run` pipes through).
test-heapmap: $(HEAPMAP) $(PICTURES_BENCH) | heapmap-deps
	@python3 tools/heapmap/test/test_heapmap.py $(HEAPMAP) $(BUILD)/tools/heapmap-test $(PICTURES_BENCH)
