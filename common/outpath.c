/* outpath.c - output path patterns. */
#include "outpath.h"

#include <string.h>

void outpath_expand(const char *pattern, const char *workdir, const outpath_job *job, uint32_t node_rank,
                    const char *node, uint32_t task, buf *out)
{
    const char *p = pattern && *pattern ? pattern : OUTPATH_DEFAULT;
    if (p[0] != '/') {
        const char *w = workdir && *workdir ? workdir : "/";
        buf_puts(out, w);
        if (w[strlen(w) - 1] != '/')
            buf_putc(out, '/');
    }
    for (; *p; p++) {
        if (*p != '%' || !p[1]) {
            buf_putc(out, *p);
            continue;
        }
        switch (*++p) {
        case 'j':
            buf_printf(out, "%llu", (unsigned long long)job->id);
            break;
        case 'A':
            buf_printf(out, "%llu", (unsigned long long)(job->array_id ? job->array_id : job->id));
            break;
        case 'a':
            buf_printf(out, "%u", job->array_index);
            break;
        case 'n':
            buf_printf(out, "%u", node_rank);
            break;
        case 'N':
            buf_puts(out, node ? node : "");
            break;
        case 't':
            buf_printf(out, "%u", task);
            break;
        case '%':
            buf_putc(out, '%');
            break;
        default: /* not ours: kept as written */
            buf_putc(out, '%');
            buf_putc(out, *p);
        }
    }
}

bool outpath_per_task(const char *pattern)
{
    for (const char *p = pattern; p && *p; p++) {
        if (p[0] == '%' && p[1] == '%')
            p++;
        else if (p[0] == '%' && p[1] == 't')
            return true;
    }
    return false;
}
