/*
 * heap_report.c - words for a report (heap.h), so that every port prints
 * the same thing: what happened ("refused free of", ...) and why. Optional:
 * a port that prints only the numbers need not link it.
 */
#include "heap.h"

bool heap_report_is_free(enum heap_report_kind kind)
{
    /* Two kinds come from an allocation, not from a free: a write after
     * free found when the object is handed out again, and an index that
     * named a run the table says is taken. */
    return kind != HEAP_REPORT_CACHE_USE_AFTER_FREE && kind != HEAP_REPORT_INDEX_MISMATCH;
}

const char* heap_report_action(enum heap_report_kind kind)
{
    if (heap_report_is_free(kind)) {
        return "refused free of";
    }
    if (kind == HEAP_REPORT_CACHE_USE_AFTER_FREE) {
        return "write after free of";
    }
    return "index named";
}

const char* heap_report_reason(enum heap_report_kind kind)
{
    switch (kind) {
    case HEAP_REPORT_FREE_OUTSIDE:
        return "not in the heap";
    case HEAP_REPORT_FREE_UNALIGNED:
        return "not at a block start";
    case HEAP_REPORT_FREE_NOT_ALLOCATED:
        return "block is free (double free?)";
    case HEAP_REPORT_FREE_INTERIOR:
        return "inside an allocation";
    case HEAP_REPORT_FREE_WRONG_OWNER:
        return "wrong owner (cache vs. blocks)";
    case HEAP_REPORT_FREE_CORRUPT:
        return "allocation chain corrupt, or its slab record names no class";
    case HEAP_REPORT_CACHE_BAD_FREE:
        return "no live small object there";
    case HEAP_REPORT_CACHE_USE_AFTER_FREE:
        return "small object written after free";
    case HEAP_REPORT_INDEX_MISMATCH:
        return "index and table disagree, index dropped (linear scan from now on)";
    case HEAP_REPORT_WINDOW_CORRUPT:
        return "record of the window allocation's backing blocks corrupt";
    }
    return "unknown";
}
