/*
 * kernel.h - a stand-in for PeachOS's src/kernel.h with the two functions
 * the PeachOS port calls, so that tools/peachos-dropin --sizes and the
 * project's tests can compile tools/peachos/kheap_port.c without a PeachOS
 * tree.
 */
#ifndef PEACHOS_STUB_KERNEL_H
#define PEACHOS_STUB_KERNEL_H

void print(const char* str);
void panic(const char* msg);

#endif
