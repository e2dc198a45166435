# mk/pictures.mk - the heapmap tool (tools/heapmap), `make pictures` and the
# test-heapmap step.
#
#   make build/tools/heapmap   the tool (needs libcairo2-dev; tools/need installs it)
#   make pictures              renders docs/pictures/*.png|svg (commit them)
#   make test-heapmap          checks the tool on known tables (raw, hex, text)

HEAPMAP := $(BUILD)/tools/heapmap
HEAPMAP_SRC := $(wildcard tools/heapmap/*.c)
HEAPMAP_HDR := $(wildcard tools/heapmap/*.h)
# The heap itself, without memory.c (the host's libc memset/memcpy serve
# cairo and the heap alike) and without kheap.c (no port needed: replay
# drives heap_create_indexed directly).
HEAPMAP_LIB := src/memory/heap/heap.c src/memory/heap/heap_check.c src/memory/heap/heap_map.c \
               src/memory/heap/heap_index.c
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
# seeds, so re-running gives the same files.
pictures: $(HEAPMAP)
	@set -e; w=$(PICTURES_WORK); mkdir -p $$w $(PICTURES); rm -f $$w/*; \
	$(HEAPMAP) tools/heapmap/examples/encoding.hex --labels --title "Table encoding: plain and cache allocations" \
	  -o $(PICTURES)/encoding-example; \
	$(HEAPMAP) tools/heapmap/test/corrupt.hex --labels --title "What heapmap draws as invalid" \
	  -o $(PICTURES)/encoding-invalid; \
	$(HEAPMAP) replay --workload w1 --blocks 4096 --seed 1 --ops 3000 --occupancy 50,90 \
	  --dat $$w/w1-timeline.dat -o $$w/w1; \
	set -- $$(ls $$w/w1-op*.png | sort); \
	for e in png svg; do cp $${1%.png}.$$e $(PICTURES)/w1-50.$$e; cp $${2%.png}.$$e $(PICTURES)/w1-90.$$e; done; \
	mv $$w/w1-timeline.png $(PICTURES)/w1-timeline.png; mv $$w/w1-timeline.svg $(PICTURES)/w1-timeline.svg; \
	$(HEAPMAP) replay --workload w3 --blocks 1024 --no-plot --dat $$w/w3-timeline.dat -o $$w/w3; \
	last=$$(ls $$w/w3-op*.png | sort | tail -1); \
	for e in png svg; do cp $${last%.png}.$$e $(PICTURES)/w3-end.$$e; done; \
	$(HEAPMAP) replay --workload w1 --blocks 25600 --occupancy 90 --ops 20000 --seed 3 --no-plot \
	  --dump $$w/w1-100mib.bin --dat $$w/w1-100mib.dat -o $$w/w1-100mib > /dev/null; \
	{ echo "PeachOS: kheap ready, 25600 blocks"; echo "W1 at 90%: done"; \
	  $(HEAPMAP) text $$w/w1-100mib.bin --per-char 0 --width 64 --lines 16; echo "halted."; } > $$w/serial.txt; \
	$(HEAPMAP) $$w/serial.txt --title "A text map from serial output: 100 MiB heap after W1 at 90%, 25 blocks per cell" \
	  -o $(PICTURES)/serial-text-map; \
	$(HEAPMAP) replay --workload tools/heapmap/examples/mixed.trace --no-plot --dat $$w/mixed.dat \
	  -o $$w/mixed; \
	last=$$(ls $$w/mixed-op*.png | sort | tail -1); \
	for e in png svg; do cp $${last%.png}.$$e $(PICTURES)/trace-example.$$e; done; \
	ls -l $(PICTURES); \
	du -cb $(PICTURES)/*.png $(PICTURES)/*.svg | tail -1 | awk '{ if ($$1 > 2000000) { print "pictures: " $$1 " bytes, over 2 MB"; exit 1 } print "pictures: " $$1 " bytes" }'

test-heapmap: $(HEAPMAP) | heapmap-deps
	@python3 tools/heapmap/test/test_heapmap.py $(HEAPMAP) $(BUILD)/tools/heapmap-test
