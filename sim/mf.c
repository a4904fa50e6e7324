/* mf.c - the simulator under the leader's scheduling pass. */
#include "mf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/decay.h"
#include "../common/xmem.h"

void mf_init(mf *m, const plan_policy *policy)
{
    memset(m, 0, sizeof *m);
    m->policy = *policy;
    m->st.policy = *policy;
    pol_init(&m->pol);
}

void mf_free(mf *m)
{
    free(m->active);
    free(m->usage);
    pol_free(&m->pol);
    memset(m, 0, sizeof *m);
}

void mf_submit(mf *m, plan_job *pj, uint32_t user, uint32_t group)
{
    if (m->n_active == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        mf_entry *a = realloc(m->active, m->cap * sizeof *a);
        if (!a)
            abort();
        m->active = a;
    }
    mf_entry *e = &m->active[m->n_active++];
    memset(e, 0, sizeof *e);
    e->pj = pj;
    snprintf(e->user, sizeof e->user, "u%u", user);
    snprintf(e->account, sizeof e->account, "g%u", group);
}

/* Usage decayed to now_ms, as the replicated state decays it. */
static uint64_t mf__decayed(const mf *m, const mf_usage *u, int64_t now_ms)
{
    if (now_ms <= u->as_of_ms)
        return u->gpu_ms;
    return decay_halflife(u->gpu_ms, (uint64_t)(now_ms - u->as_of_ms), (uint64_t)m->pol.half_life_ms);
}

size_t mf_pass(mf *m, plan *p, int64_t now, void (*started)(void *arg, plan_job *j), void *arg)
{
    size_t n = m->n_active;
    pass_job *jobs = xcalloc(n ? n : 1, sizeof *jobs);
    for (size_t k = 0; k < n; k++) {
        const mf_entry *e = &m->active[k];
        const plan_job *q = e->pj;
        pass_job *j = &jobs[k];
        j->id = q->id;
        j->user = e->user;
        j->account = e->account;
        j->submit_s = q->submit;
        j->limit_s = q->limit;
        j->nodes = q->nodes;
        j->per_node = q->per_node;
        j->cpus_per_node = q->cpus_per_node;
        j->tag = q->tag;
        j->span = q->span; /* else a gang no site can hold never starts */
        j->allowed = q->allowed;
        j->running = e->running;
        j->start_s = q->start;
        j->where = q->where;
    }
    pass_usage *usage = xcalloc(m->n_usage ? m->n_usage : 1, sizeof *usage);
    for (size_t i = 0; i < m->n_usage; i++) {
        usage[i].account = m->usage[i].account;
        usage[i].user = m->usage[i].user;
        usage[i].gpu_s = (double)mf__decayed(m, &m->usage[i], now * 1000) / 1000.0;
    }
    pass_view v = {.nodes = p->nodes,
                   .n_nodes = p->n_nodes,
                   .jobs = jobs,
                   .n_jobs = n,
                   .usage = usage,
                   .n_usage = m->n_usage,
                   .pol = &m->pol,
                   .now_s = now,
                   .site_rtt = p->site_rtt,
                   .rtt_arg = p->rtt_arg};
    pass_out out;
    pass_run(&v, &m->st, &m->policy, p->max_starts, &out);
    for (size_t i = 0; i < out.n_starts; i++) {
        mf_entry *e = &m->active[out.starts[i].job];
        e->running = true;
        e->pj->start = now;
        e->pj->where = out.starts[i].where; /* the plan's from now on */
        out.starts[i].where = NULL;
        plan_add_running(p, e->pj);
        started(arg, e->pj);
    }
    size_t count = out.n_starts;
    pass_out_free(&out, n);
    free(jobs);
    free(usage);
    return count;
}

void mf_ended(mf *m, const plan_job *pj, int64_t now)
{
    size_t k = 0;
    while (k < m->n_active && m->active[k].pj != pj)
        k++;
    if (k == m->n_active)
        return;
    mf_entry e = m->active[k];
    memmove(&m->active[k], &m->active[k + 1], (m->n_active - k - 1) * sizeof *m->active);
    m->n_active--;
    uint64_t slots = (uint64_t)pj->nodes * pj->per_node;
    uint64_t ms = now > pj->start ? (uint64_t)(now - pj->start) * 1000 : 0;
    mf_usage *u = NULL;
    for (size_t i = 0; i < m->n_usage && !u; i++)
        if (strcmp(m->usage[i].user, e.user) == 0 && strcmp(m->usage[i].account, e.account) == 0)
            u = &m->usage[i];
    if (!u) {
        if (m->n_usage == m->usage_cap) {
            m->usage_cap = m->usage_cap ? m->usage_cap * 2 : 64;
            mf_usage *a = realloc(m->usage, m->usage_cap * sizeof *a);
            if (!a)
                abort();
            m->usage = a;
        }
        u = &m->usage[m->n_usage++];
        memset(u, 0, sizeof *u);
        memcpy(u->user, e.user, sizeof u->user);
        memcpy(u->account, e.account, sizeof u->account);
        u->as_of_ms = now * 1000;
    }
    u->gpu_ms = mf__decayed(m, u, now * 1000) + slots * ms;
    u->as_of_ms = now * 1000;
}
