/*
 * hosted/kheap_hosted.h - knobs of the hosted kheap port (tests, tools).
 */
#ifndef PEACHOS_KHEAP_HOSTED_H
#define PEACHOS_KHEAP_HOSTED_H

#include <stdbool.h>
#include <stddef.h>

#include "../memory/heap/heap_index.h"
#include "../memory/heap/kheap.h"
#include "../memory/heap/kheap_port.h"

struct kheap_hosted_config
{
    size_t heap_bytes; /* pool size for the next kheap_init (rounded down to blocks) */
    bool indexed;      /* give the heap a placement index */
    bool fail_init;    /* make the next kheap_init fail, as a bad platform would */
    bool quiet;        /* do not print reports on stderr (they are still recorded) */
};

/* Applies from the next kheap_init(). */
void kheap_hosted_configure(const struct kheap_hosted_config* config);

/* Refused frees reported so far, and the last one. */
size_t kheap_hosted_report_count(void);
struct heap_report kheap_hosted_last_report(void);

#endif /* PEACHOS_KHEAP_HOSTED_H */
