/* out.c - output shared by every jz command. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "../common/utf8.h"
#include "cli.h"

void cli_json_begin(json *j, buf *b)
{
    json_init(j, b, true);
}

/* Whatever a command shows may hold other people's text (a job's name,
 * its command, a reason): its control characters and bytes that are not
 * UTF-8 are shown as escapes, never sent to the terminal to act. */
int cli_write(buf *b)
{
    buf safe = BUF_INIT;
    utf8_term(&safe, b->data, b->len, true);
    size_t n = safe.len ? fwrite(safe.data, 1, safe.len, stdout) : 0;
    bool ok = n == safe.len && fflush(stdout) == 0;
    buf_free(&safe);
    buf_reset(b);
    return ok ? 0 : -1;
}

int cli_flush(buf *b)
{
    if (b->len && b->data[b->len - 1] != '\n')
        buf_putc(b, '\n');
    int rc = cli_write(b);
    buf_free(b);
    return rc == 0 ? CLI_OK : CLI_REFUSED;
}

void cli_error(const cli *c, const char *fmt, ...)
{
    va_list ap;
    buf msg = BUF_INIT, safe = BUF_INIT;
    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    utf8_term(&safe, msg.data, msg.len, false);
    if (c->slurm) /* as Slurm's commands say it */
        fprintf(stderr, "%s: error: %s\n", c->command, buf_str(&safe));
    else
        fprintf(stderr, "jz%s%s: %s\n", c->command ? " " : "", c->command ? c->command : "", buf_str(&safe));
    buf_free(&msg);
    buf_free(&safe);
}

const char *cli_utc_time(int64_t ms, char *s, size_t len)
{
    return view_utc_time(ms, s, len);
}

const char *cli_local_time(int64_t ms, char *s, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !localtime_r(&t, &tm) || strftime(s, len, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(s, len, "-");
    return s;
}

int cli_format(buf *b, const char *fmt, cli_field_fn field, const void *arg, void *ctx)
{
    for (const char *p = fmt; *p;) {
        if (*p != '%') {
            buf_putc(b, *p++);
            continue;
        }
        p++;
        if (*p == '%') {
            buf_putc(b, *p++);
            continue;
        }
        bool right = false;
        if (*p == '.')
            right = true, p++;
        else if (*p == '-')
            p++;
        unsigned width = 0;
        while (*p >= '0' && *p <= '9' && width < 1000)
            width = width * 10 + (unsigned)(*p++ - '0');
        if (!*p)
            return -1;
        buf v = BUF_INIT;
        if (field(&v, *p++, arg, ctx) != 0) {
            buf_free(&v);
            return -1;
        }
        size_t len = v.len;
        if (width && len > width)
            len = width;
        size_t pad = width > len ? width - len : 0;
        if (right)
            buf_printf(b, "%*s", (int)pad, "");
        buf_printf(b, "%.*s", (int)len, v.data ? v.data : "");
        if (!right)
            buf_printf(b, "%*s", (int)pad, "");
        buf_free(&v);
    }
    buf_putc(b, '\n');
    return 0;
}
