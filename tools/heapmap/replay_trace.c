/*
 * tools/heapmap/replay_trace.c - trace files for `heapmap replay`: the
 * benchmark's exact traces (`bench-peach --trace-out`), those that --record
 * writes, or hand-written ones. One operation a line:
 *   heap <blocks>     the heap's size (before the first operation)
 *   m <id> <bytes>    heap_malloc
 *   c <id> <blocks>   a cache allocation, as the cache layer makes it
 *   f <id>            free (a failed allocation frees NULL)
 *   snap [label]      a snapshot
 *   # comment         also after an operation
 * The text is read and split here, and each line handed to replay_heap.c;
 * a line that does not parse stops the replay with its number.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

static bool rp_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

bool rp_number(const char** p, size_t* value)
{
    while (rp_is_blank(**p)) {
        (*p)++;
    }
    if (**p < '0' || **p > '9') {
        return false;
    }
    char* end = NULL;
    errno = 0;
    unsigned long long v = strtoull(*p, &end, 10);
    if (errno != 0) {
        return false;
    }
    *p = end;
    *value = (size_t)v;
    return true;
}

static bool rp_line_end(const char* p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r') {
        p++;
    }
    return *p == '\0' || *p == '#';
}

char** rp_trace_lines(char* text, size_t* count, size_t* ops, size_t* heap_blocks)
{
    size_t n = 1;
    for (char* p = text; *p; p++) {
        n += *p == '\n';
    }
    char** lines = malloc(n * sizeof(char*));
    if (lines == NULL) {
        return NULL;
    }
    *count = 0;
    *ops = 0;
    for (char* p = text; p != NULL;) {
        char* nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        lines[(*count)++] = p;
        while (rp_is_blank(*p)) {
            p++;
        }
        *ops += (p[0] == 'm' || p[0] == 'c' || p[0] == 'f') && rp_is_blank(p[1]);
        size_t v = 0;
        const char* q = p + 4;
        if (strncmp(p, "heap", 4) == 0 && rp_number(&q, &v) && rp_line_end(q)) {
            *heap_blocks = v;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return lines;
}

/* "snap [label]": the label up to a comment, at most 127 bytes. */
static void rp_trace_snap(struct rp* r, const char* p)
{
    char label[128];
    while (rp_is_blank(*p)) {
        p++;
    }
    snprintf(label, sizeof(label), "%s", p);
    label[strcspn(label, "\r#")] = '\0';
    rp_mark(r, label);
}

/* "m ID BYTES", "c ID BLOCKS" or "f ID": 1 done, 0 not such a line, -1 the
 * replay refused it (a message on stderr). */
static int rp_trace_op(struct rp* r, const char* p, size_t line)
{
    char op = *p++;
    size_t id = 0, amount = 0;
    if (!rp_is_blank(*p) || !rp_number(&p, &id)) {
        return 0;
    }
    if (op == 'm' || op == 'c') {
        if (!rp_number(&p, &amount) || !rp_line_end(p) || amount == 0) {
            return 0;
        }
        return rp_malloc(r, id, amount, op == 'c', line) < 0 ? -1 : 1;
    }
    if (op == 'f' && rp_line_end(p)) {
        return rp_free(r, id, line) < 0 ? -1 : 1;
    }
    return 0;
}

int rp_trace(struct rp* r, char** lines, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char* p = lines[i];
        size_t line = i + 1;
        while (rp_is_blank(*p)) {
            p++;
        }
        if (rp_line_end(p) || strncmp(p, "heap", 4) == 0) {
            continue; /* blank, comment, or the heap line (read before) */
        }
        if (strncmp(p, "snap", 4) == 0 && (p[4] == '\0' || rp_is_blank(p[4]) || p[4] == '\r')) {
            rp_trace_snap(r, p + 4);
            continue;
        }
        int res = rp_trace_op(r, p, line);
        if (res == 0) {
            fprintf(stderr, "heapmap replay: line %zu: expected \"m ID BYTES\", \"c ID BLOCKS\", \"f ID\", "
                            "\"snap [LABEL]\" or \"heap BLOCKS\": %s\n",
                    line, lines[i]);
        }
        if (res <= 0) {
            return -1;
        }
    }
    rp_mark(r, "end of trace");
    return 0;
}
