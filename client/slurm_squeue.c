/* slurm_squeue.c - squeue: its options onto jz queue (one format engine,
 * cmd_job.c's, with Slurm's % fields). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "slurm.h"

#define SQUEUE_DEFAULT "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
#define SQUEUE_LONG "%.18i %.9P %.8j %.8u %.8T %.10M %.9l %.6D %R"
#define SQUEUE_START "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %R"

/* -O/--Format's names and the % field each is. */
static const struct {
    const char *name;
    char type;
} squeue__fields[] = {
    {"jobid", 'i'},     {"jobarrayid", 'i'}, {"name", 'j'},      {"username", 'u'},  {"userid", 'u'},
    {"state", 'T'},     {"statecompact", 't'}, {"timeused", 'M'}, {"timelimit", 'l'}, {"numnodes", 'D'},
    {"nodelist", 'N'},  {"reasonlist", 'R'}, {"reason", 'r'},    {"partition", 'P'}, {"account", 'a'},
    {"qos", 'q'},       {"starttime", 'S'},  {"submittime", 'V'}, {"endtime", 'e'},  {"numcpus", 'C'},
    {"tres-per-node", 'b'}, {"workdir", 'Z'}, {"command", 'o'},  {"arrayjobid", 'F'}, {"arraytaskid", 'K'},
    {"timeleft", 'L'},  {"priority", 'Q'},   {"reservation", 'v'}, {"feature", 'f'}, {"dependency", 'E'},
};

/* "JobID:10,Name:.20" into "%10i%.20j": 0, or -1 after saying what is wrong. */
static int squeue__Format(cli *c, const char *spec, buf *out)
{
    if (!spec)
        return -1;
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",");
        size_t nlen = strcspn(p, ":,");
        char type = 0;
        for (size_t i = 0; i < sizeof squeue__fields / sizeof *squeue__fields; i++)
            if (strlen(squeue__fields[i].name) == nlen && strncasecmp(p, squeue__fields[i].name, nlen) == 0)
                type = squeue__fields[i].type;
        if (!type) {
            cli_error(c, "Invalid --Format field: %.*s", (int)(nlen > 40 ? 40 : nlen), p);
            return -1;
        }
        const char *w = nlen < len ? p + nlen + 1 : "";
        bool right = *w == '.';
        unsigned width = 20; /* as squeue -O */
        if (right)
            w++;
        if (*w >= '0' && *w <= '9')
            width = (unsigned)strtoul(w, NULL, 10) % 1000;
        buf_printf(out, "%%%s%u%c", right ? "." : "", width, type); /* as squeue -O: no separator */
        p += len + (p[len] == ',');
    }
    return 0;
}

int slurm_squeue(cli *c, int argc, char **argv)
{
    enum { O_ME = 256, O_START, O_NOHEADER };
    static const struct option longs[] = {
        {"noheader", no_argument, NULL, 'h'},     {"format", required_argument, NULL, 'o'},
        {"Format", required_argument, NULL, 'O'}, {"user", required_argument, NULL, 'u'},
        {"me", no_argument, NULL, O_ME},          {"jobs", required_argument, NULL, 'j'},
        {"states", required_argument, NULL, 't'}, {"name", required_argument, NULL, 'n'},
        {"account", required_argument, NULL, 'A'}, {"partition", required_argument, NULL, 'p'},
        {"start", no_argument, NULL, O_START},    {"all", no_argument, NULL, 'a'},
        {"long", no_argument, NULL, 'l'},         {NULL, 0, NULL, 0},
    };
    static char *args[64];
    static char words[32][1100];
    const char *format = NULL;
    bool start = false, lng = false, noheader = false;
    buf fmt = BUF_INIT;
    int n = 0, nw = 0, opt;
    while ((opt = getopt_long(argc, argv, "ho:O:u:j::t:n:A:p:al", longs, NULL)) != -1) {
        const char *name = NULL;
        switch (opt) {
        case 'h': noheader = true; continue;
        case 'o': format = optarg; continue;
        case 'O':
            buf_reset(&fmt);
            if (squeue__Format(c, optarg, &fmt) != 0) {
                buf_free(&fmt);
                return CLI_USAGE;
            }
            format = buf_str(&fmt);
            continue;
        case O_ME: args[n++] = "--me"; continue;
        case O_START: start = true; continue;
        case 'a': continue; /* every partition: always */
        case 'l': lng = true; continue;
        case 'u': name = "user"; break;
        case 'j': if (!optarg) continue; name = "jobs"; break;
        case 't': name = "state"; break;
        case 'n': name = "name"; break;
        case 'A': name = "account"; break;
        case 'p': name = "partition"; break;
        default: buf_free(&fmt); return CLI_USAGE;
        }
        if (nw == 32) {
            cli_error(c, "too many options");
            buf_free(&fmt);
            return CLI_USAGE;
        }
        snprintf(words[nw], sizeof words[nw], "--%s=%.1024s", name, optarg);
        args[n++] = words[nw++];
    }
    /* squeue JOBID...: as -j */
    for (int i = optind; i < argc && nw < 32; i++) {
        snprintf(words[nw], sizeof words[nw], "--jobs=%.1024s", argv[i]);
        args[n++] = words[nw++];
    }
    if (start && !format)
        args[n++] = "--state=PENDING";
    args[n++] = "--format";
    args[n++] = (char *)(format ? format : start ? SQUEUE_START : lng ? SQUEUE_LONG : SQUEUE_DEFAULT);
    if (noheader)
        args[n++] = "--noheader";
    int rc = cmd_queue(c, n, args);
    buf_free(&fmt);
    return rc;
}
