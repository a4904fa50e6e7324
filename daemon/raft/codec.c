/* codec.c - the replicated log's entries and snapshots, in bytes. */
#include "codec.h"

#include <stdio.h>
#include <string.h>

uint32_t codec_cmd_format(Jazari__Command__CmdCase cmd_case)
{
    switch (cmd_case) {
    case JAZARI__COMMAND__CMD_SUBMIT:
    case JAZARI__COMMAND__CMD_CANCEL:
    case JAZARI__COMMAND__CMD_NODE_UP:
    case JAZARI__COMMAND__CMD_NODE_DOWN:
    case JAZARI__COMMAND__CMD_START:
    case JAZARI__COMMAND__CMD_END:
    case JAZARI__COMMAND__CMD_RELEASE:
        return 1;
    case JAZARI__COMMAND__CMD_PREEMPT:
    case JAZARI__COMMAND__CMD_RESERVE:
    case JAZARI__COMMAND__CMD_UNRESERVE:
    case JAZARI__COMMAND__CMD_POLICY:
        return 3;
    case JAZARI__COMMAND__CMD_TRUST:
        return 5;
    case JAZARI__COMMAND__CMD_STEP:
        return 6;
    case JAZARI__COMMAND__CMD_HOLD:
    case JAZARI__COMMAND__CMD_REQUEUE:
    case JAZARI__COMMAND__CMD_UPDATE:
    case JAZARI__COMMAND__CMD_STEP_CANCEL:
        return 7;
    case JAZARI__COMMAND__CMD_DRAIN:
    case JAZARI__COMMAND__CMD_EVENT:
        return 8;
    case JAZARI__COMMAND__CMD_GRANT:
        return 9;
    case JAZARI__COMMAND__CMD__NOT_SET:
    default:
        return 0;
    }
}

uint32_t codec_command_format(const Jazari__Command *cmd)
{
    uint32_t need = codec_cmd_format(cmd->cmd_case);
    /* An older release would lose an unreachable node's jobs at once. */
    if (cmd->cmd_case == JAZARI__COMMAND__CMD_NODE_DOWN && cmd->node_down &&
        (cmd->node_down->keep_jobs || cmd->node_down->lose_kept))
        return 10;
    /* An older release would drop the accounting policy, or the events'
     * retention. */
    if (cmd->cmd_case == JAZARI__COMMAND__CMD_POLICY && cmd->policy && cmd->policy->acct)
        return 9;
    if (cmd->cmd_case == JAZARI__COMMAND__CMD_POLICY && cmd->policy && cmd->policy->events_retention_ms)
        return 8;
    if (cmd->cmd_case != JAZARI__COMMAND__CMD_SUBMIT || !cmd->submit || need == 0)
        return need;
    /* Jobs the state machine ends differently: a batch job ends with its
     * first node's part (format 6), an allocation too (format 7). */
    for (size_t i = 0; i < cmd->submit->n_jobs; i++) {
        const Jazari__JobSpec *s = cmd->submit->jobs[i] ? cmd->submit->jobs[i]->spec : NULL;
        if (s && s->alloc && need < 7)
            need = 7;
        else if (s && s->batch && need < 6)
            need = 6;
    }
    return need;
}

static void codec__put_varint(buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    buf_append(b, tmp, n);
}

void codec_put_field(buf *out, uint32_t field, const void *data, size_t len)
{
    codec__put_varint(out, (uint64_t)field << 3 | 2);
    codec__put_varint(out, len);
    buf_append(out, data, len);
}

void codec_entry_begin(buf *out, uint32_t format, int64_t time_ms)
{
    Jazari__Entry head = JAZARI__ENTRY__INIT;
    head.format = format;
    head.time_ms = time_ms;
    jazari__entry__pack(&head, buf_extend(out, jazari__entry__get_packed_size(&head)));
}

void codec_entry_add(buf *out, const void *cmd, size_t len)
{
    codec_put_field(out, 3, cmd, len);
}

void codec_entry_encode(uint32_t format, int64_t time_ms, Jazari__Command **cmds, size_t n, buf *out)
{
    codec_entry_begin(out, format, time_ms);
    buf one = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        buf_reset(&one);
        jazari__command__pack(cmds[i], buf_extend(&one, jazari__command__get_packed_size(cmds[i])));
        codec_entry_add(out, one.data, one.len);
    }
    buf_free(&one);
}

Jazari__Entry *codec_entry_decode(const void *data, size_t len, char *err, size_t errlen)
{
    Jazari__Entry *e = jazari__entry__unpack(NULL, len, data);
    if (!e) {
        snprintf(err, errlen, "log entry of %zu bytes does not decode", len);
        return NULL;
    }
    if (e->format == 0 || e->format > CODEC_FORMAT) {
        snprintf(err, errlen,
                 "log entry in format %u: this jazarid reads formats 1 to %d; a newer release wrote it: "
                 "upgrade this controller",
                 e->format, CODEC_FORMAT);
        jazari__entry__free_unpacked(e, NULL);
        return NULL;
    }
    if (e->n_commands > CODEC_ENTRY_MAX_CMDS) {
        snprintf(err, errlen, "log entry with %zu commands: at most %d", e->n_commands, CODEC_ENTRY_MAX_CMDS);
        jazari__entry__free_unpacked(e, NULL);
        return NULL;
    }
    for (size_t i = 0; i < e->n_commands; i++) {
        uint32_t need = codec_cmd_format(e->commands[i]->cmd_case);
        if (need == 0 || need > e->format) {
            snprintf(err, errlen,
                     "log entry (format %u) holds command %zu of kind %d, which this jazarid %s; a newer "
                     "release wrote it: upgrade this controller",
                     e->format, i, (int)e->commands[i]->cmd_case,
                     need ? "reads only from a later format" : "does not know");
            jazari__entry__free_unpacked(e, NULL);
            return NULL;
        }
    }
    return e;
}

int codec_frame(const buf *entry, struct raft_buffer *out)
{
    size_t padded = (4 + entry->len + 7) & ~(size_t)7;
    uint8_t *p = raft_calloc(1, padded);
    if (!p)
        return -1;
    p[0] = (uint8_t)entry->len;
    p[1] = (uint8_t)(entry->len >> 8);
    p[2] = (uint8_t)(entry->len >> 16);
    p[3] = (uint8_t)(entry->len >> 24);
    memcpy(p + 4, entry->data, entry->len);
    out->base = p;
    out->len = padded;
    return 0;
}

int codec_unframe(const struct raft_buffer *b, const uint8_t **data, size_t *len, char *err, size_t errlen)
{
    const uint8_t *p = b->base;
    if (b->len < 4) {
        snprintf(err, errlen, "log entry of %zu bytes: shorter than its length field", b->len);
        return -1;
    }
    uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (n > b->len - 4) {
        snprintf(err, errlen, "log entry of %zu bytes announces %u", b->len, n);
        return -1;
    }
    *data = p + 4;
    *len = n;
    return 0;
}

void codec_snapshot_begin(buf *out, const Jazari__Snapshot *head)
{
    jazari__snapshot__pack(head, buf_extend(out, jazari__snapshot__get_packed_size(head)));
}

Jazari__Snapshot *codec_snapshot_decode(const void *data, size_t len, char *err, size_t errlen)
{
    Jazari__Snapshot *s = jazari__snapshot__unpack(NULL, len, data);
    if (!s) {
        snprintf(err, errlen, "snapshot of %zu bytes does not decode: the file is damaged", len);
        return NULL;
    }
    if (s->format == 0 || s->format > CODEC_FORMAT) {
        snprintf(err, errlen, "snapshot in format %u: this jazarid reads formats 1 to %d; upgrade it",
                 s->format, CODEC_FORMAT);
        jazari__snapshot__free_unpacked(s, NULL);
        return NULL;
    }
    return s;
}
