/*
 * tools/heapmap/replay_plot.c - the timeline of a replay: the samples that
 * replay_heap.c wrote (occupancy, fragmentation and largest free run after
 * each operation, or every k-th) plotted by gnuplot as PREFIX-timeline.png
 * (pngcairo) and .svg, a dashed line at each snapshot. Apart from the
 * replay itself because it only reads the data file and talks to gnuplot.
 */
#define _DEFAULT_SOURCE /* popen */
#include <stdlib.h>

#include "replay.h"

static void rp_quote(FILE* f, const char* s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') {
            fputc('\'', f); /* gnuplot: '' inside single quotes */
        }
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The title, axes and a dashed line at each snapshot. */
static void rp_plot_setup(FILE* g, const struct rp* r)
{
    fprintf(g, "set title \"%s: occupancy and fragmentation, %zu blocks\"\n", r->name, r->blocks);
    fprintf(g, "set xlabel 'operation'\nset ylabel 'percent'\nset yrange [0:105]\nset xrange [0:%zu]\n", r->ops);
    fprintf(g, "set grid\nset key below horizontal maxcols 3 font ',9'\n");
    for (size_t i = 0; i < r->nmarks; i++) {
        fprintf(g, "set arrow from %zu, graph 0 to %zu, graph 1 nohead dashtype 2 lc rgb '#777777'\n", r->marks[i],
                r->marks[i]);
        fprintf(g, "set label 'snapshot %zu' at %zu, graph 1.03 %s font ',8' tc rgb '#555555'\n", i + 1,
                r->marks[i], r->marks[i] == r->ops ? "right" : r->marks[i] == 0 ? "left" : "center");
    }
}

/* The three curves, on gnuplot terminal `term`, into PREFIX-timeline.EXT. */
static void rp_plot_to(FILE* g, const struct rp* r, const char* dat, const char* term, const char* ext)
{
    char out[4096];
    snprintf(out, sizeof(out), "%s-timeline.%s", r->o->out, ext);
    fprintf(g, "set terminal %s\nset output ", term);
    rp_quote(g, out);
    fprintf(g, "\nplot ");
    rp_quote(g, dat);
    fprintf(g, " using 1:2 with lines lw 2 lc rgb '#1d4f8c' title 'occupancy (used / total)', ");
    rp_quote(g, dat);
    fprintf(g, " using 1:3 with lines lw 2 lc rgb '#d2691e' title 'fragmentation (1 - largest free run / free)', ");
    rp_quote(g, dat);
    fprintf(g, " using 1:4 with lines lw 1 lc rgb '#2ca02c' title 'largest free run / total'\n");
    fprintf(g, "set output\n");
}

int rp_plot(struct rp* r, const char* dat)
{
    FILE* g = popen("gnuplot", "w");
    if (g == NULL) {
        fprintf(stderr, "heapmap replay: cannot run gnuplot (tools/need gnuplot-nox)\n");
        return -1;
    }
    rp_plot_setup(g, r);
    rp_plot_to(g, r, dat, "pngcairo size 900,440 font 'DejaVu Sans,10'", "png");
    rp_plot_to(g, r, dat, "svg size 900,440 font 'DejaVu Sans,10' background '#ffffff'", "svg");
    int status = pclose(g);
    if (status != 0) {
        fprintf(stderr, "heapmap replay: gnuplot failed (status %d)\n", status);
        return -1;
    }
    printf("timeline dat=%s png=%s-timeline.png svg=%s-timeline.svg samples_every=%zu\n", dat, r->o->out,
           r->o->out, r->sample_every);
    return 0;
}
