/* ptyin.c - srun --pty: the keys a client types, and its window's size,
 * for the terminal of a step's one task. The daemon the client talks to
 * relays them to the task's node as it relays a step's output (logs.c);
 * the node writes them to the part's FIFO (exec/pty.h), which its
 * supervisor moves to the terminal. Only the job's owner may type: the
 * FIFO belongs to them, and authz.c decides. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "exec/pty.h"
#include "jzd.h"

void ptyin_request(jzd *d, net_conn *c, const Jazari__Envelope *e)
{
    const Jazari__PtyInputRequest *r = e->pty_input_request;
    if (!r->node || !*r->node || r->step == 0 || r->data.len > SPTY_DATA_MAX || r->rows > 0xffff ||
        r->cols > 0xffff) {
        req_error(
            c, e->request_id, JAZARI__ERROR_CODE__BAD_REQUEST, false,
            "pty input: a node, a step, at most %u bytes and a window of at most 65535 x 65535 are needed",
            SPTY_DATA_MAX);
        return;
    }
    authz_who w;
    if (!req_who(d, c, e, &w))
        return;
    if (strcmp(r->node, d->cfg->name) != 0) {
        Jazari__PtyInputRequest fwd = *r;
        fwd.hops = r->hops + 1;
        Jazari__Envelope copy = *e;
        copy.pty_input_request = &fwd;
        logs_relay(d, c, e, &copy, &w, "pty input", r->node, r->hops);
        return;
    }
    exec_part *p = exec_find(&d->ex, r->job, r->attempt, r->step);
    if (!p || !p->running) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false,
                  "step %llu.%u does not run on %s (it ended, or the job was requeued)",
                  (unsigned long long)r->job, r->step - 1, d->cfg->name);
        return;
    }
    char why[300];
    uid_t owner;
    int fd = spty_input_open(p->dir, &owner, why, sizeof why);
    if (fd < 0 && errno == ENOENT) { /* the task is starting: none taken, sent again */
        Jazari__PtyInputReply later = JAZARI__PTY_INPUT_REPLY__INIT;
        req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_PTY_INPUT_REPLY, &later);
        return;
    }
    if (fd < 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__NOT_FOUND, false, "step %llu.%u on %s: %s",
                  (unsigned long long)r->job, r->step - 1, d->cfg->name, why);
        return;
    }
    if (!authz_pty_input(&w, owner)) {
        close(fd);
        req_error(c, e->request_id, JAZARI__ERROR_CODE__PERMISSION_DENIED, false,
                  "only the owner of job %llu types into its terminal", (unsigned long long)r->job);
        return;
    }
    long n = spty_input_write(fd, r->data.data, r->data.len, r->rows, r->cols);
    close(fd);
    if (n < 0) {
        req_error(c, e->request_id, JAZARI__ERROR_CODE__UNAVAILABLE, false,
                  "step %llu.%u on %s: its terminal is gone", (unsigned long long)r->job, r->step - 1,
                  d->cfg->name);
        return;
    }
    Jazari__PtyInputReply rep = JAZARI__PTY_INPUT_REPLY__INIT;
    rep.accepted = (uint32_t)n;
    req_reply(c, e->request_id, JAZARI__ENVELOPE__BODY_PTY_INPUT_REPLY, &rep);
}
