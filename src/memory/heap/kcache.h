/*
 * kcache.h - small-object caches on top of the block heap (work in progress).
 */
#ifndef PEACHOS_KCACHE_H
#define PEACHOS_KCACHE_H

#include "heap.h"

#endif /* PEACHOS_KCACHE_H */
