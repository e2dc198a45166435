/*
 * bench/median.h - the median of a set of round figures, for the
 * stand-alone W2 programs (bench/w2.c, bench/w2_threads.c), which do not
 * link the bench.c harness. Sorts v in place.
 */
#ifndef PEACHOS_BENCH_MEDIAN_H
#define PEACHOS_BENCH_MEDIAN_H

#include <stddef.h>
#include <stdlib.h>

static inline int bench_median_cmp(const void* a, const void* b)
{
    double x = *(const double*)a;
    double y = *(const double*)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double* v, size_t n)
{
    qsort(v, n, sizeof(double), bench_median_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* PEACHOS_BENCH_MEDIAN_H */
