/* cmd_health.c - the admins' commands about nodes' service: jz drain, jz
 * resume, jz events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define EVENTS_POLL_MS 1000

static int health__gpu(cli *c, const char *s, Jazari__DrainRequest *q)
{
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v > 4095) {
        cli_error(c, "bad --gpu '%.40s': a GPU's index on the node (jz node NAME lists them)", s ? s : "");
        return -1;
    }
    q->has_gpu = true;
    q->gpu = (uint32_t)v;
    return 0;
}

/* The node as the reply says it is now: one line, or its JSON. */
static int health__say(cli *c, const Jazari__NodeInfo *n, const Jazari__DrainRequest *q)
{
    buf b = BUF_INIT;
    if (c->json) {
        json j;
        cli_json_begin(&j, &b);
        view_node(&j, n);
        return cli_flush(&b);
    }
    if (q->has_gpu) {
        const Jazari__GpuDrain *g = NULL;
        for (size_t i = 0; i < n->n_gpu_drains && !g; i++)
            if (n->gpu_drains[i]->gpu == (int32_t)q->gpu)
                g = n->gpu_drains[i];
        buf_printf(&b, "node %s GPU %u: %s%s%s\n", n->name, q->gpu, g ? g->state : "in service",
                   g && g->reason[0] ? ": " : "", g ? g->reason : "");
    } else {
        buf_printf(&b, "node %s: %s%s%s\n", n->name, n->state, n->reason[0] ? ": " : "", n->reason);
    }
    if (!q->resume && strcmp(n->state, "draining") == 0 && !q->now)
        buf_printf(&b, "its running jobs finish; nothing new starts there (--now requeues them)\n");
    return cli_flush(&b);
}

static int health__drain(cli *c, int argc, char **argv, bool resume)
{
    const char *gpu = NULL, *reason = NULL;
    bool now = false;
    cli_opt drain_opts[] = {{"gpu", CLI_STRING, &gpu},
                            {"reason", CLI_STRING, &reason},
                            {"now", CLI_FLAG, &now},
                            {NULL, CLI_FLAG, NULL}};
    cli_opt resume_opts[] = {
        {"gpu", CLI_STRING, &gpu}, {"reason", CLI_STRING, &reason}, {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    int npos = cli_parse(c, argc, argv, resume ? resume_opts : drain_opts, pos, 1);
    if (npos < 0)
        return CLI_USAGE;
    if (npos != 1) {
        cli_error(c, resume ? "which node? usage: jz resume NODE [--gpu N]"
                            : "which node? usage: jz drain NODE [--gpu N] --reason TEXT [--now]");
        return CLI_USAGE;
    }
    Jazari__DrainRequest q = JAZARI__DRAIN_REQUEST__INIT;
    if (gpu && health__gpu(c, gpu, &q) != 0)
        return CLI_USAGE;
    if (!resume && (!reason || !*reason)) {
        cli_error(c, "say why: jz drain %s --reason TEXT (others read it in jz nodes and jz events)", pos[0]);
        return CLI_USAGE;
    }
    q.node = (char *)pos[0];
    q.resume = resume;
    q.reason = (char *)(reason ? reason : "");
    q.now = now;
    Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
    req.body_case = JAZARI__ENVELOPE__BODY_DRAIN_REQUEST;
    req.drain_request = &q;
    int status;
    wire_msg *m = cli_request(c, &req, JAZARI__ENVELOPE__BODY_DRAIN_REPLY, &status);
    if (!m)
        return status;
    const Jazari__NodeInfo *n = wire_msg_env(m)->drain_reply->node;
    int rc = n ? health__say(c, n, &q) : CLI_REFUSED;
    wire_msg_free(m);
    return rc;
}

int cmd_drain(cli *c, int argc, char **argv)
{
    return health__drain(c, argc, argv, false);
}

int cmd_resume(cli *c, int argc, char **argv)
{
    return health__drain(c, argc, argv, true);
}

static void health__event_line(buf *b, const Jazari__Event *ev)
{
    char when[40], where[160] = "", job[32] = "";
    cli_local_time(ev->time_ms, when, sizeof when);
    if (ev->node[0] && ev->gpu >= 0)
        snprintf(where, sizeof where, "%s/gpu%d", ev->node, ev->gpu);
    else
        snprintf(where, sizeof where, "%s", ev->node[0] ? ev->node : "-");
    if (ev->job)
        snprintf(job, sizeof job, "job %llu: ", (unsigned long long)ev->job);
    buf_printf(b, "%-19s %-7s %-13s %-20s %s%s%s%s%s\n", when, ev->severity, ev->kind, where, job, ev->text,
               ev->by[0] ? " (" : "", ev->by, ev->by[0] ? ")" : "");
}

/* jz events [-f] [--since WHEN] [--node NAME] [--max N]: the newest events
 * (all of them since WHEN), oldest first; -f goes on with new ones as they
 * come (with --json: one object per line). */
int cmd_events(cli *c, int argc, char **argv)
{
    const char *since = NULL, *node = NULL, *max = NULL;
    bool follow = false;
    cli_opt opts[] = {{"follow", CLI_FLAG, &follow}, {"f", CLI_FLAG, &follow},  {"since", CLI_STRING, &since},
                      {"node", CLI_STRING, &node},   {"max", CLI_STRING, &max}, {NULL, CLI_FLAG, NULL}};
    const char *pos[1];
    if (cli_parse(c, argc, argv, opts, pos, 0) < 0)
        return CLI_USAGE;
    Jazari__EventsRequest q = JAZARI__EVENTS_REQUEST__INIT;
    unsigned long most = since ? 10000 : 100;
    if ((since && cli_opt_since(c, since, &q.since_ms) != 0) ||
        (max && cli_opt_count(c, "max", max, "events", 10000, &most) != 0))
        return CLI_USAGE;
    q.max = (uint32_t)most;
    q.node = (char *)(node ? node : "");
    cli_conn *k = cli_connect(c);
    if (!k)
        return CLI_REFUSED;
    buf b = BUF_INIT;
    json j;
    if (c->json && !follow) {
        cli_json_begin(&j, &b);
        json_obj_begin(&j);
        json_key(&j, "events");
        json_arr_begin(&j);
    } else if (!c->json) {
        buf_printf(&b, "%-19s %-7s %-13s %-20s %s\n", "TIME", "LEVEL", "KIND", "WHERE", "WHAT");
    }
    int rc = CLI_OK;
    for (bool first = true;; first = false) {
        Jazari__Envelope req = JAZARI__ENVELOPE__INIT;
        req.body_case = JAZARI__ENVELOPE__BODY_EVENTS_REQUEST;
        req.events_request = &q;
        wire_msg *m = cli_call(k, &req);
        if (!m || cli_refused(c, m) || wire_msg_env(m)->body_case != JAZARI__ENVELOPE__BODY_EVENTS_REPLY) {
            wire_msg_free(m);
            rc = CLI_REFUSED;
            break;
        }
        const Jazari__EventsReply *r = wire_msg_env(m)->events_reply;
        for (size_t i = 0; i < r->n_events; i++) {
            if (c->json && follow) {
                json_init(&j, &b, false); /* one object per line */
                view_event(&j, r->events[i]);
                buf_puts(&b, "\n");
            } else if (c->json) {
                view_event(&j, r->events[i]);
            } else {
                health__event_line(&b, r->events[i]);
            }
        }
        /* From the newest seen on (the first page may have been cut to
         * --max: what follows comes whole). */
        if (r->n_events)
            q.after_seq = r->events[r->n_events - 1]->seq;
        else if (first)
            q.after_seq = r->last_seq;
        q.max = 10000;
        wire_msg_free(m);
        if (!follow)
            break;
        if (cli_write(&b) != 0) { /* the reader went away */
            rc = CLI_OK;
            break;
        }
        struct timespec ts = {EVENTS_POLL_MS / 1000, (long)(EVENTS_POLL_MS % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    cli_close(k);
    if (c->json && !follow) {
        json_arr_end(&j);
        json_obj_end(&j);
    }
    if (rc != CLI_OK) {
        buf_free(&b);
        return rc;
    }
    return cli_flush(&b);
}
