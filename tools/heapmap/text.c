/*
 * tools/heapmap/text.c - text that stays inside the picture: titles broken
 * into lines that fit its width, and lines cut short with "...".
 *
 * A title is broken at spaces: after a ": " where one fits (so a region's
 * title breaks after "region k of n:"), else after the last ", " that fits
 * in the second half of the line, else at the last space that fits;
 * a word wider than the line is cut between characters. At most
 * HM_TITLE_LINES lines: the last one ends in "..." if the rest does not fit.
 * The breaks are computed once, with the layout, and drawn on both
 * surfaces (PNG and SVG) as they are.
 */
#include <cairo.h>
#include <string.h>

#include "heapmap.h"

#define HM_TITLE_SIZE 15.0
#define HM_TITLE_STEP 19 /* from one title line to the next */
#define HM_ELLIPSIS "..."

static double hm_width(cairo_t* cr, const char* text, size_t len)
{
    char buf[512];
    len = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    cairo_text_extents_t ext;
    cairo_text_extents(cr, buf, &ext);
    return ext.x_advance;
}

size_t hm_fit(cairo_t* cr, const char* text, size_t len, double max)
{
    size_t n = 0;
    while (n < len) {
        size_t next = n + 1;
        while (next < len && ((unsigned char)text[next] & 0xc0) == 0x80) { /* a whole UTF-8 character */
            next++;
        }
        if (hm_width(cr, text, next) > max) {
            break;
        }
        n = next;
    }
    return n;
}

void hm_title_font(cairo_t* cr)
{
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, HM_TITLE_SIZE);
}

/* The length of the next line of text[0..len): up to a break that fits in max. */
static size_t hm_break(cairo_t* cr, const char* text, size_t len, double max)
{
    if (hm_width(cr, text, len) <= max) {
        return len;
    }
    size_t space = 0, colon = 0, comma = 0;
    for (size_t p = 1; p < len; p++) {
        if (text[p] != ' ') {
            continue;
        }
        double w = hm_width(cr, text, p);
        if (w > max) {
            break;
        }
        space = p;
        colon = text[p - 1] == ':' ? p : colon;
        comma = text[p - 1] == ',' && w >= max / 2 ? p : comma;
    }
    size_t n = colon != 0 ? colon : comma != 0 ? comma : space != 0 ? space : hm_fit(cr, text, len, max);
    return n != 0 ? n : 1;
}

void hm_title_wrap(cairo_t* cr, const char* title, double max, struct hm_title* t)
{
    memset(t, 0, sizeof(*t));
    if (title == NULL) {
        return;
    }
    hm_title_font(cr);
    size_t at = 0, len = strlen(title);
    while (at < len && t->n < HM_TITLE_LINES) {
        while (title[at] == ' ') {
            at++;
        }
        size_t rest = len - at, n = hm_break(cr, title + at, rest, max);
        if (t->n == HM_TITLE_LINES - 1 && n < rest) {
            n = hm_fit(cr, title + at, rest, max - hm_width(cr, HM_ELLIPSIS, strlen(HM_ELLIPSIS)));
            t->cut = true;
        }
        t->start[t->n] = at;
        t->len[t->n++] = n;
        at += n;
    }
}

int hm_title_height(const struct hm_title* t)
{
    return t->n == 0 ? 0 : 30 + HM_TITLE_STEP * (int)(t->n - 1);
}

void hm_draw_title(cairo_t* cr, const char* title, const struct hm_title* t, double x, double y)
{
    hm_title_font(cr);
    for (size_t i = 0; i < t->n; i++) {
        char line[512];
        snprintf(line, sizeof(line), "%.*s%s", (int)t->len[i], title + t->start[i],
                 t->cut && i + 1 == t->n ? HM_ELLIPSIS : "");
        cairo_move_to(cr, x, y + HM_TITLE_STEP * (double)i);
        cairo_show_text(cr, line);
    }
}
