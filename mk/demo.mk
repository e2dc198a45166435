# mk/demo.mk - the hosted demo (tools/demo/demo.c): the library in a normal
# process through the hosted port.
#   make demo    build build/demo and run it

.PHONY: demo

$(BUILD)/demo: tools/demo/demo.c $(LIB_SRC) $(LIB_HDR) $(HOSTED_SRC) $(HOSTED_HDR) | host-deps
	@mkdir -p $(@D)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ tools/demo/demo.c $(LIB_SRC) $(HOSTED_SRC) -lpthread

demo: $(BUILD)/demo
	$(BUILD)/demo
