/*
 * tests/unit/unit_kheap.h - helpers of the unit tests that run the kernel
 * heap through its hosted port. Include after unit.h.
 */
#ifndef PEACHOS_UNIT_KHEAP_H
#define PEACHOS_UNIT_KHEAP_H

#include "hosted/kheap_hosted.h"
#include "memory/heap/kcache.h"
#include "memory/heap/kheap.h"

/* kheap_check must be clean (the block it names is printed if not). */
#define assert_kheap_clean()                                              \
    do {                                                                  \
        size_t bad_ = 12345;                                              \
        int res_ = kheap_check(&bad_);                                    \
        if (res_ != 0) {                                                  \
            print_error("kheap_check: %d at block %zu\n", res_, bad_);   \
        }                                                                 \
        assert_int_equal(res_, 0);                                        \
    } while (0)

/* The kernel heap's data pool. */
static inline unsigned char* pool(void)
{
    return (unsigned char*)kheap_get()->saddr;
}

#endif /* PEACHOS_UNIT_KHEAP_H */
