# mk/kernel.mk - placeholder until the demo kernel lands (issue 3):
# `make run` runs the hosted demo.
.PHONY: run
run: $(BUILD)/demo
	$(BUILD)/demo
