/* out.c - output shared by every jz command. */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"

void cli_json_begin(json *j, buf *b)
{
    json_init(j, b, true);
}

int cli_flush(buf *b)
{
    if (b->len && b->data[b->len - 1] != '\n')
        buf_putc(b, '\n');
    size_t n = b->len ? fwrite(b->data, 1, b->len, stdout) : 0;
    bool ok = n == b->len && fflush(stdout) == 0;
    buf_free(b);
    return ok ? CLI_OK : CLI_REFUSED;
}

void cli_error(const cli *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "jz%s%s: ", c->command ? " " : "", c->command ? c->command : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
