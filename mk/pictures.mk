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

heapmap-deps:
	@tools/need libcairo2-dev pkg-config gnuplot-nox python3

$(HEAPMAP): $(HEAPMAP_SRC) $(HEAPMAP_HDR) $(HEAPMAP_LIB) $(LIB_HDR) | heapmap-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) $$(pkg-config --cflags cairo) -o $@ $(HEAPMAP_SRC) $(HEAPMAP_LIB) \
	  $$(pkg-config --libs cairo) -lm

# A handful of pictures (each as PNG and SVG), all from fixed inputs and
# seeds, so re-running gives the same files.
pictures: $(HEAPMAP) $(BUILD)/demo
	@set -e; w=$(PICTURES_WORK); mkdir -p $$w $(PICTURES); rm -f $$w/*; \
	$(HEAPMAP) tools/heapmap/examples/encoding.hex --labels --title "Table encoding: plain and cache allocations" \
	  -o $(PICTURES)/encoding-example; \
	$(HEAPMAP) tools/heapmap/test/corrupt.hex --labels --title "What heapmap draws as invalid" \
	  -o $(PICTURES)/encoding-invalid; \
	$(HEAPMAP) replay --workload w1 --blocks 4096 --seed 1 --ops 3000 --occupancy 50,90 \
	  --dat $$w/w1-timeline.dat -o $$w/w1; \
	mv $$w/w1-op003000.png $(PICTURES)/w1-50.png; mv $$w/w1-op003000.svg $(PICTURES)/w1-50.svg; \
	mv $$w/w1-op006000.png $(PICTURES)/w1-90.png; mv $$w/w1-op006000.svg $(PICTURES)/w1-90.svg; \
	mv $$w/w1-timeline.png $(PICTURES)/w1-timeline.png; mv $$w/w1-timeline.svg $(PICTURES)/w1-timeline.svg; \
	$(HEAPMAP) replay --workload w3 --blocks 1024 --no-plot --dat $$w/w3-timeline.dat -o $$w/w3; \
	mv $$w/w3-op001442.png $(PICTURES)/w3-end.png; mv $$w/w3-op001442.svg $(PICTURES)/w3-end.svg; \
	$(BUILD)/demo > $$w/demo-serial.txt; \
	$(HEAPMAP) $$w/demo-serial.txt --title "The demo's text map (heap_dump_map, 25 blocks per cell)" \
	  -o $(PICTURES)/demo-text-map; \
	$(HEAPMAP) replay --workload tools/heapmap/examples/mixed.trace --no-plot --dat $$w/mixed.dat \
	  -o $$w/mixed; \
	mv $$w/mixed-op000018.png $(PICTURES)/trace-example.png; mv $$w/mixed-op000018.svg $(PICTURES)/trace-example.svg; \
	ls -l $(PICTURES); \
	du -cb $(PICTURES)/*.png $(PICTURES)/*.svg | tail -1 | awk '{ if ($$1 > 2000000) { print "pictures: " $$1 " bytes, over 2 MB"; exit 1 } print "pictures: " $$1 " bytes" }'

test-heapmap: $(HEAPMAP)
	@python3 tools/heapmap/test/test_heapmap.py $(HEAPMAP) $(BUILD)/tools/heapmap-test
