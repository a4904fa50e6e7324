/* args.c - GNU-style option parsing shared by every jz command. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const cli_opt *cli__find(const cli_opt *opts, const char *name, size_t len)
{
    for (; opts && opts->name; opts++)
        if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
            return opts;
    return NULL;
}

void cli_describe_opts(const cli_opt *opts)
{
    for (; opts && opts->name; opts++)
        printf("  %s%s%s\n", opts->name[1] ? "--" : "-", opts->name, opts->kind == CLI_FLAG ? "" : " VALUE");
}

void cli_describe_shared(void)
{
    static const cli_opt shared[] = {{"json", CLI_FLAG, NULL},      {"socket", CLI_STRING, NULL},
                                     {"server", CLI_STRING, NULL},  {"credentials", CLI_STRING, NULL},
                                     {"timeout", CLI_STRING, NULL}, {"help", CLI_FLAG, NULL},
                                     {NULL, CLI_FLAG, NULL}};
    cli_describe_opts(shared);
}

int cli_parse(cli *c, int argc, char **argv, const cli_opt *opts, const char **pos, int maxpos)
{
    const char *timeout = NULL;
    const cli_opt common[] = {
        {"json", CLI_FLAG, &c->json},       {"socket", CLI_STRING, &c->socket},
        {"server", CLI_STRING, &c->server}, {"credentials", CLI_STRING, &c->credentials},
        {"timeout", CLI_STRING, &timeout},  {NULL, CLI_FLAG, NULL},
    };
    if (c->describe) {
        printf("options:\n");
        cli_describe_opts(opts);
        cli_describe_shared();
        return -1;
    }
    int npos = 0;
    bool only_pos = false;
    c->before_dashdash = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (npos == maxpos) {
                cli_error(c, "unexpected argument '%.100s' (see jz %s --help)", a, c->command);
                return -1;
            }
            pos[npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            c->before_dashdash = npos;
            continue;
        }
        /* A short option is a one-letter name: -f for an option named "f". */
        bool is_short = a[1] != '-';
        if (is_short && (a[2] != '\0' || !cli__find(opts, a + 1, 1))) {
            cli_error(c, "unknown option '%.100s' (see jz %s --help)", a, c->command);
            return -1;
        }
        const char *name = a + (is_short ? 1 : 2);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = cli__find(opts, name, len);
        if (!o)
            o = cli__find(common, name, len);
        if (!o) {
            cli_error(c, "unknown option '--%.*s' (see jz %s --help)", (int)(len > 60 ? 60 : len), name,
                      c->command);
            return -1;
        }
        if (o->kind == CLI_FLAG) {
            if (eq) {
                cli_error(c, "option --%s takes no value", o->name);
                return -1;
            }
            *(bool *)o->target = true;
        } else {
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                cli_error(c, "option --%s needs a value", o->name);
                return -1;
            }
            if (o->kind == CLI_LIST) {
                cli_list *l = o->target;
                if (l->n == CLI_LIST_MAX) {
                    cli_error(c, "option --%s given more than %d times", o->name, CLI_LIST_MAX);
                    return -1;
                }
                l->items[l->n++] = v;
            } else {
                *(const char **)o->target = v;
            }
        }
    }
    if (timeout) {
        char *end;
        double t = strtod(timeout, &end);
        if (*end || !(t > 0 && t <= 86400)) {
            cli_error(c, "bad --timeout '%.40s': seconds, above 0 and at most 86400", timeout);
            return -1;
        }
        c->timeout_s = t;
    }
    return npos;
}

/* A moment: "now" (0), "+DURATION" or "-DURATION" from now (as --time),
 * "YYYY-MM-DDTHH:MM[:SS]" in local time, or "@UNIX_SECONDS". */
int cli_parse_when(const char *s, int64_t *out)
{
    time_t now = time(NULL);
    if (strcmp(s, "now") == 0) {
        *out = 0;
        return 0;
    }
    if (s[0] == '+' || s[0] == '-') {
        uint64_t secs;
        if (cli_parse_time_limit(s + 1, &secs) != 0 || secs > (uint64_t)now)
            return -1;
        *out = ((int64_t)now + (s[0] == '+' ? 1 : -1) * (int64_t)secs) * 1000;
        return 0;
    }
    if (s[0] == '@') {
        char *end;
        errno = 0;
        long long v = strtoll(s + 1, &end, 10);
        if (errno || *end || end == s + 1 || v <= 0)
            return -1;
        *out = v * 1000;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
    if (end && *end == ':')
        end = strptime(end, ":%S", &tm);
    if (!end || *end)
        return -1;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t * 1000;
    return 0;
}

int cli_opt_since(const cli *c, const char *since, int64_t *out)
{
    if (cli_parse_when(since, out) == 0)
        return 0;
    cli_error(c,
              "bad --since '%.40s': -DURATION (-2:00:00, -90 for minutes, -7-00:00:00), "
              "YYYY-MM-DDTHH:MM[:SS] or @UNIX_SECONDS",
              since);
    return -1;
}

int cli_opt_when(const cli *c, const char *opt, const char *s, int64_t *out)
{
    /* A plain date: its midnight, local time, as the other forms are. */
    char full[32];
    const char *as_given = s;
    if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
        snprintf(full, sizeof full, "%sT00:00", s);
        s = full;
    }
    if (cli_parse_when(s, out) == 0) {
        if (*out == 0) /* "now", as a moment */
            *out = cli_now_ms();
        return 0;
    }
    cli_error(c,
              "bad --%s '%.40s': YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (local time), -DURATION before now "
              "(-7-00:00:00 for a week), now or @UNIX_SECONDS",
              opt, as_given);
    return -1;
}

int cli_opt_count(const cli *c, const char *opt, const char *s, const char *what, unsigned long max,
                  unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > max) {
        cli_error(c, "bad --%s '%.40s': a number of %s, 1 to %lu", opt, s, what, max);
        return -1;
    }
    *out = v;
    return 0;
}
