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
        case 'x':
            buf_puts(out, job->name ? job->name : "");
            break;
        case 'u':
            buf_puts(out, job->user ? job->user : "");
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

void outpath_each(const outpath_files *f, uint32_t node_rank, const char *node, outpath_fn fn, void *arg)
{
    const char *patterns[2] = {f->output, f->error && *f->error ? f->error : NULL};
    uint32_t tasks = f->tasks ? f->tasks : 1;
    for (int p = 0; p < 2; p++) {
        if (p == 1 && !patterns[1])
            continue;
        bool per_task = outpath_per_task(patterns[p]);
        for (uint32_t t = 0; t < (per_task ? tasks : 1); t++) {
            buf path = BUF_INIT;
            uint32_t rank = node_rank * tasks + t;
            outpath_expand(patterns[p], f->workdir, &f->job, node_rank, node, rank, &path);
            fn(arg, rank, per_task, p == 1, buf_str(&path));
            buf_free(&path);
        }
    }
}
