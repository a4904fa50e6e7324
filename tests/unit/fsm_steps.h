/* fsm_steps.h - what the leader does to the state, as tests do it: an
 * entry applied, a scheduling pass committed, a part's end. Shared by the
 * state machine's and the policy's tests. */
#ifndef JZ_FSM_STEPS_H
#define JZ_FSM_STEPS_H

#include "daemon/raft/fsm.h"
#include "daemon/sched/sched.h"

/* Applies an entry of one command at t (a failure fails the test). */
void fsm_step_apply(fsm *f, int64_t t, Jazari__Command *c);
/* The same in that log format, with what it did into res (may be NULL). */
void fsm_step_apply_in(fsm *f, uint32_t format, int64_t t, Jazari__Command *c, fsm_result *res);
/* Node name comes up (site rabat) with gpus GPUs and no links. */
void fsm_step_node_up(fsm *f, int64_t t, const char *name, unsigned gpus);
/* An entry (appended to out) that submits n held jobs (`true`, by amina)
 * with that min_id, in that log format. n at most 8. */
void fsm_step_held_entry(buf *out, uint32_t format, int64_t t, uint32_t n, uint64_t min_id);
/* Submits one job of spec by amina (uid 1000); `true` when it has no
 * command. */
void fsm_step_submit(fsm *f, int64_t t, Jazari__JobSpec *spec);
/* The same, by user. */
void fsm_step_submit_as(fsm *f, int64_t t, Jazari__JobSpec *spec, const char *user);
/* A pass as the leader makes it, its starts and preemptions committed;
 * how many of each (either may be NULL), and the reserved head. */
void fsm_step_pass(fsm *f, sched_state *st, int64_t t, size_t *starts, size_t *preempts, uint64_t *blocked);
/* A part of run (id, attempt) ended on node (NULL: no node named), with
 * reason (may be NULL). */
void fsm_step_end(fsm *f, int64_t t, uint64_t id, uint32_t attempt, const char *node, Jazari__JobState st,
                  int exit_code, const char *reason);

#endif
