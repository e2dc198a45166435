/*
 * kcache.c - small-object caches on top of the block heap (work in progress).
 */
#include "kcache.h"
