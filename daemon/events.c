/* events.c - the leader's own events (a leader change, a health warning, a
 * burn-in's verdict, the late end of a lost run), logged as EventCmds for
 * jz events. A leaf: it proposes and nothing else, so that any module may
 * note an event without depending on another's. */
#include "../common/log.h"
#include "jzd.h"

static void events__on_committed(void *arg, const ctl_outcome *o)
{
    (void)arg;
    if (o->code != JAZARI__ERROR_CODE__OK)
        log_warn("events", "an event was not logged: %s", o->message);
}

void events_note(jzd *d, const char *kind, const char *severity, const char *node, int32_t gpu,
                 const char *text)
{
    Jazari__Event ev = JAZARI__EVENT__INIT;
    ev.kind = (char *)kind;
    ev.severity = (char *)severity;
    ev.node = (char *)(node ? node : "");
    ev.gpu = gpu;
    ev.text = (char *)text;
    ev.by = d->cfg->name;
    Jazari__EventCmd ec = JAZARI__EVENT_CMD__INIT;
    ec.event = &ev;
    Jazari__Command cmd = JAZARI__COMMAND__INIT;
    cmd.cmd_case = JAZARI__COMMAND__CMD_EVENT;
    cmd.event = &ec;
    ctl_propose(&d->ctl, &cmd, events__on_committed, NULL);
}
