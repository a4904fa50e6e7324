/* slurm_scontrol.c - scontrol: show job|node|partition|hostnames|hostlist,
 * release, hold, requeue, requeuehold, update. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/hostlist.h"
#include "../common/outpath.h"
#include "slurm.h"

static void scontrol__job(buf *b, const Jazari__Job *job, bool oneliner)
{
    const Jazari__JobSpec *s = job->spec;
    const char *sep = oneliner ? " " : "\n   ";
    char id[48];
    (void)id;
    buf_printf(b, "JobId=%llu JobName=%s", (unsigned long long)job->id, s && s->name ? s->name : "");
    if (job->array_job_id && s)
        buf_printf(b, "%sArrayJobId=%llu ArrayTaskId=%u", sep, (unsigned long long)job->array_job_id,
                   s->array_index);
    buf_printf(b, "%sUserId=%s(%u) GroupId=(%u)", sep, job->user ? job->user : "", job->uid, job->gid);
    bool held = job->held && job->state == JAZARI__JOB_STATE__JOB_PENDING; /* as Slurm: priority 0 */
    buf_printf(b, "%sPriority=%u Account=%s QOS=%s", sep, held ? 0 : job->priority,
               s && s->account ? s->account : "", s && s->qos && *s->qos ? s->qos : "normal");
    buf_printf(b, "%sJobState=%s Reason=%s", sep, cli_job_state(job->state),
               held                          ? "JobHeldUser"
               : job->reason && *job->reason ? job->reason
                                             : "None");
    buf_printf(b, "%sRequeue=%d Restarts=%u BatchFlag=%d ExitCode=", sep, s && !s->no_requeue, job->attempt,
               s && s->batch);
    if (cli_job_ended(job) && job->exit_code < 0)
        buf_printf(b, "0:%d", -job->exit_code);
    else
        buf_printf(b, "%d:0", cli_job_ended(job) ? job->exit_code : 0);
    int64_t now = cli_now_ms();
    int64_t run =
        job->start_time_ms > 0
            ? ((cli_job_ended(job) && job->end_time_ms > 0 ? job->end_time_ms : now) - job->start_time_ms) /
                  1000
            : 0;
    buf_printf(b, "%sRunTime=", sep);
    slurm_duration(b, run > 0 ? (uint64_t)run : 0, false);
    buf_puts(b, " TimeLimit=");
    slurm_duration(b, s ? s->time_limit_s : 0, true);
    buf_printf(b, "%sSubmitTime=", sep);
    slurm_time(b, job->submit_time_ms, "Unknown");
    buf_puts(b, " EligibleTime=");
    slurm_time(b, job->submit_time_ms, "Unknown");
    buf_printf(b, "%sStartTime=", sep);
    slurm_time(b, job->start_time_ms, "Unknown");
    buf_puts(b, " EndTime=");
    slurm_time(b, cli_job_ended(job) ? job->end_time_ms : 0, "Unknown");
    buf_printf(b, "%sPartition=%s", sep,
               job->partition && *job->partition    ? job->partition
               : s && s->partition && *s->partition ? s->partition
                                                    : "(null)");
    buf_printf(b, "%sNodeList=", sep);
    slurm_job_nodes(b, job, "(null)");
    buf_printf(b, "%sNumNodes=%u NumCPUs=%llu NumTasks=%u CPUs/Task=%u", sep,
               job->n_allocs   ? (unsigned)job->n_allocs
               : s && s->nodes ? s->nodes
                               : 1,
               (unsigned long long)slurm_job_cpus(job), s && s->ntasks ? s->ntasks : 1,
               s && s->cpus_per_task ? s->cpus_per_task : 1);
    if (s && s->gpus_per_node)
        buf_printf(b, "%sTresPerNode=gres/gpu:%u", sep, s->gpus_per_node);
    buf_printf(b, "%sCommand=", sep);
    for (size_t k = 0; s && k < s->n_argv; k++)
        buf_printf(b, "%s%s", k ? " " : "", s->argv[k]);
    if (s && !s->n_argv)
        buf_puts(b, s->batch ? "(script)" : "(null)");
    buf_printf(b, "%sWorkDir=%s", sep, s && s->workdir && *s->workdir ? s->workdir : "(null)");
    /* The files, as the batch step's node names them (tools read them from here). */
    outpath_job oj = {job->id, job->array_job_id, s ? s->array_index : 0, s ? s->name : NULL, job->user};
    const char *node = job->n_allocs ? job->allocs[0]->node : "";
    const char *wd = s && s->workdir && *s->workdir ? s->workdir : "/";
    buf_printf(b, "%sStdOut=", sep);
    outpath_expand(s ? s->output : NULL, wd, &oj, 0, node, 0, b);
    buf_printf(b, "%sStdErr=", sep);
    outpath_expand(s && s->error && *s->error ? s->error : s ? s->output : NULL, wd, &oj, 0, node, 0, b);
    buf_puts(b, "\n");
    if (!oneliner)
        buf_puts(b, "\n");
}

typedef struct scontrol_all {
    buf *b;
    bool oneliner;
} scontrol_all;

static int scontrol__one(const Jazari__Job *job, void *arg)
{
    scontrol_all *a = arg;
    scontrol__job(a->b, job, a->oneliner);
    return 0;
}

static int scontrol__show_job(cli *c, const char *ref, bool oneliner)
{
    buf b = BUF_INIT;
    if (!ref) {
        scontrol_all a = {&b, oneliner};
        int status = cli_each_job(c, false, 0, scontrol__one, &a);
        if (status != CLI_OK) {
            buf_free(&b);
            return status;
        }
        if (!b.len)
            buf_puts(&b, "No jobs in the system\n");
        return cli_flush(&b);
    }
    uint64_t id;
    int status;
    if (cli_job_ref(c, ref, &id, &status) != 0)
        return status;
    wire_msg *m = cli_fetch_job(c, id, &status);
    if (!m)
        return status;
    scontrol__job(&b, wire_msg_env(m)->show_reply->job, oneliner);
    wire_msg_free(m);
    return cli_flush(&b);
}

static int scontrol__show_nodes(cli *c, const char *name, bool partitions, bool oneliner)
{
    int status;
    cli_node_hw *hw;
    wire_msg *m = cli_fetch_nodes(c, &hw, &status);
    if (!m)
        return status;
    const Jazari__NodesReply *r = wire_msg_env(m)->nodes_reply;
    const char *sep = oneliner ? " " : "\n   ";
    buf b = BUF_INIT;
    bool found = false;
    if (partitions) {
        for (size_t k = 0; k < r->n_partitions; k++) {
            const Jazari__PartitionInfo *p = r->partitions[k];
            if (name && strcmp(name, p->name) != 0)
                continue;
            found = true;
            buf_printf(&b, "PartitionName=%s%sDefault=%s State=UP", p->name, sep,
                       p->is_default ? "YES" : "NO");
            buf_printf(&b, "%sMaxTime=", sep);
            if (p->max_time_s)
                slurm_duration(&b, p->max_time_s, true);
            else
                buf_puts(&b, "UNLIMITED");
            buf_puts(&b, " DefaultTime=");
            if (p->default_time_s)
                slurm_duration(&b, p->default_time_s, true);
            else
                buf_puts(&b, "NONE");
            buf_printf(&b, "%sNodes=", sep);
            if (p->n_nodes)
                slurm_hostlist(&b, (const char *const *)p->nodes, p->n_nodes);
            else
                buf_puts(&b, "(null)");
            buf_printf(&b, "%sTotalNodes=%zu\n%s", sep, p->n_nodes, oneliner ? "" : "\n");
        }
        if (!found && !name)
            buf_puts(&b, "No partitions in the system\n");
    } else {
        for (size_t i = 0; i < r->n_nodes; i++) {
            const Jazari__NodeInfo *n = r->nodes[i];
            if (name && strcmp(name, n->name) != 0)
                continue;
            found = true;
            const char *st = strcmp(n->state, "up") != 0 ? n->state : view_node_alloc_state(n, &hw[i]);
            buf_printf(&b, "NodeName=%s%sCPUAlloc=%u CPUTot=%u", n->name, sep, hw[i].cpus_used, hw[i].cpus);
            buf_printf(&b, "%sGres=", sep);
            if (n->gpus_total)
                buf_printf(&b, "gpu:%s%s%u", hw[i].model, hw[i].model[0] ? ":" : "", n->gpus_total);
            else
                buf_puts(&b, "(null)");
            buf_printf(&b, "%sRealMemory=%llu", sep, (unsigned long long)(hw[i].mem >> 20));
            buf_printf(&b, "%sState=", sep);
            for (const char *p = st; *p; p++)
                buf_putc(&b, (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p));
            buf_printf(&b, "%sPartitions=", sep);
            for (size_t k = 0; k < n->n_partitions; k++)
                buf_printf(&b, "%s%s", k ? "," : "", n->partitions[k]);
            buf_printf(&b, "%sFeatures=%s", sep, n->labels && *n->labels ? n->labels : "(null)");
            if (n->reason && *n->reason) /* Slurm's: Reason=TEXT [USER@TIME] */
                buf_printf(&b, "%sReason=%s [%s]", sep, n->reason, n->by && *n->by ? n->by : "jazari");
            buf_printf(&b, "\n%s", oneliner ? "" : "\n");
        }
    }
    free(hw);
    wire_msg_free(m);
    if (name && !found) {
        buf_free(&b);
        cli_error(c, "%s %s not found", partitions ? "Partition" : "Node", name);
        return CLI_REFUSED;
    }
    return cli_flush(&b);
}

/* show hostnames [LIST]: one a line; show hostlist LIST: compressed. */
static int scontrol__hostnames(cli *c, const char *list, bool compress)
{
    if (!list)
        list = getenv("SLURM_JOB_NODELIST");
    if (!list) {
        cli_error(c, "host list is empty (give one, or run inside a job: $SLURM_JOB_NODELIST)");
        return CLI_USAGE;
    }
    hostlist hl = {0};
    char err[256];
    if (hostlist_expand(list, 0, &hl, err, sizeof err) != 0) {
        cli_error(c, "invalid host list '%.60s': %s", list, err);
        hostlist_free(&hl);
        return CLI_USAGE;
    }
    buf b = BUF_INIT;
    if (compress) {
        hostlist_compress((const char *const *)hl.names, hl.n, false, &b);
    } else {
        for (size_t i = 0; i < hl.n; i++)
            buf_printf(&b, "%s\n", hl.names[i]);
    }
    hostlist_free(&hl);
    return cli_flush(&b);
}

/* "update NodeName=N State=DRAIN|RESUME [Reason=TEXT]" onto jz drain or
 * jz resume (an admin's; Slurm's DOWN is a drain --now here: the node's
 * daemon, not the admin, says whether it is down). */
static int scontrol__update_node(cli *c, int argc, char **argv)
{
    const char *node = NULL, *state = NULL, *reason = NULL;
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t kl = eq ? (size_t)(eq - argv[i]) : 0;
        if (eq && kl == 8 && strncasecmp(argv[i], "nodename", 8) == 0)
            node = eq + 1;
        else if (eq && kl == 5 && strncasecmp(argv[i], "state", 5) == 0)
            state = eq + 1;
        else if (eq && kl == 6 && strncasecmp(argv[i], "reason", 6) == 0)
            reason = eq + 1;
        else {
            cli_error(
                c, "update: '%.60s': a node takes NodeName=, State=DRAIN|DOWN|RESUME and Reason=", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!node || !state) {
        cli_error(c, "update: NodeName=NODE State=DRAIN|RESUME [Reason=TEXT]");
        return CLI_USAGE;
    }
    if (strchr(node, ',') || strchr(node, '[')) {
        cli_error(c, "update: one node at a time here (NodeName=%.60s)", node);
        return CLI_USAGE;
    }
    char *args[6] = {(char *)node};
    int n = 1;
    if (strcasecmp(state, "resume") == 0 || strcasecmp(state, "undrain") == 0 ||
        strcasecmp(state, "idle") == 0)
        return cmd_resume(c, n, args);
    bool down = strcasecmp(state, "down") == 0;
    if (!down && strcasecmp(state, "drain") != 0) {
        cli_error(c, "update: State=%.20s: DRAIN, DOWN or RESUME", state);
        return CLI_USAGE;
    }
    if (!reason || !*reason) {
        cli_error(c, "update: you must specify a reason when changing a node's state to %s (Reason=TEXT)",
                  down ? "DOWN" : "DRAIN");
        return CLI_USAGE;
    }
    args[n++] = "--reason";
    args[n++] = (char *)reason;
    if (down)
        args[n++] = "--now";
    return cmd_drain(c, n, args);
}

/* "update JobId=5 TimeLimit=10 ..." onto cmd_update's {"5","--time","10",...}. */
static int scontrol__update(cli *c, int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strncasecmp(argv[i], "nodename=", 9) == 0)
            return scontrol__update_node(c, argc, argv);
    static const struct {
        const char *key, *opt;
    } keys[] = {{"timelimit", "--time"},
                {"jobname", "--name"},
                {"name", "--name"},
                {"qos", "--qos"},
                {"account", "--account"},
                {"partition", "--partition"},
                {"numnodes", "--nodes"},
                {"nice", "--nice"},
                {"dependency", "--dependency"},
                {"features", "--constraint"}};
    char *args[64];
    int n = 0;
    const char *job = NULL;
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq) {
            cli_error(c, "update: '%.60s' is not KEY=VALUE", argv[i]);
            return CLI_USAGE;
        }
        size_t kl = (size_t)(eq - argv[i]);
        if ((kl == 5 && strncasecmp(argv[i], "jobid", 5) == 0) ||
            (kl == 3 && strncasecmp(argv[i], "job", 3) == 0)) {
            job = eq + 1;
            continue;
        }
        const char *opt = NULL;
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            if (strlen(keys[k].key) == kl && strncasecmp(argv[i], keys[k].key, kl) == 0)
                opt = keys[k].opt;
        if (!opt) {
            cli_error(c,
                      "update: %.*s cannot be changed here (TimeLimit, JobName, QOS, Account, Partition, "
                      "NumNodes, Dependency, Features can)",
                      (int)(kl > 40 ? 40 : kl), argv[i]);
            return CLI_USAGE;
        }
        if (n > 60)
            break;
        args[1 + n++] = (char *)opt;
        args[1 + n++] = (char *)(eq + 1);
    }
    if (!job) {
        cli_error(c, "update: which job? JobId=ID");
        return CLI_USAGE;
    }
    args[0] = (char *)job;
    return cmd_update(c, n + 1, args);
}

int slurm_scontrol(cli *c, int argc, char **argv)
{
    static const struct option longs[] = {
        {"details", no_argument, NULL, 'd'},
        {"oneliner", no_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'Q'},
        {NULL, 0, NULL, 0},
    };
    bool oneliner = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "+doQ", longs, NULL)) != -1) {
        switch (opt) {
        case 'd':
        case 'Q':
            break;
        case 'o':
            oneliner = true;
            break;
        default:
            return CLI_USAGE;
        }
    }
    /* Options may follow the command too: scontrol show jobid -dd 5. */
    char *words[64];
    int nw = 0;
    for (int i = optind; i < argc && nw < 64; i++) {
        if (argv[i][0] == '-' && argv[i][1] && strchr("doQ", argv[i][1])) {
            if (strchr(argv[i], 'o') && argv[i][1] != '-')
                oneliner = true;
            continue;
        }
        if (strcmp(argv[i], "--oneliner") == 0) {
            oneliner = true;
            continue;
        }
        words[nw++] = argv[i];
    }
    if (nw == 0) {
        cli_error(c, "no command: show job|node|partition|hostnames|hostlist, release, hold, requeue, "
                     "requeuehold, update");
        return CLI_USAGE;
    }
    const char *cmd = words[0];
    if (strcasecmp(cmd, "show") == 0) {
        if (nw < 2) {
            cli_error(c, "show what? job, node, partition, hostnames, hostlist");
            return CLI_USAGE;
        }
        const char *what = words[1], *arg = nw > 2 ? words[2] : NULL;
        if (strcasecmp(what, "job") == 0 || strcasecmp(what, "jobs") == 0 || strcasecmp(what, "jobid") == 0)
            return scontrol__show_job(c, arg, oneliner);
        if (strcasecmp(what, "node") == 0 || strcasecmp(what, "nodes") == 0)
            return scontrol__show_nodes(c, arg, false, oneliner);
        if (strcasecmp(what, "partition") == 0 || strcasecmp(what, "partitions") == 0)
            return scontrol__show_nodes(c, arg, true, oneliner);
        if (strcasecmp(what, "hostnames") == 0)
            return scontrol__hostnames(c, arg, false);
        if (strcasecmp(what, "hostlist") == 0 || strcasecmp(what, "hostlistsorted") == 0)
            return scontrol__hostnames(c, arg, true);
        cli_error(c, "show %.40s: not known here (job, node, partition, hostnames, hostlist)", what);
        return CLI_USAGE;
    }
    if (strcasecmp(cmd, "release") == 0 || strcasecmp(cmd, "cancel") == 0) {
        if (nw < 2) {
            cli_error(c, "%s: which jobs?", cmd);
            return CLI_USAGE;
        }
        return strcasecmp(cmd, "release") == 0 ? cmd_release(c, nw - 1, words + 1)
                                               : cmd_cancel(c, nw - 1, words + 1);
    }
    if (strcasecmp(cmd, "update") == 0) {
        return scontrol__update(c, nw - 1, words + 1);
    }
    bool hold = strcasecmp(cmd, "hold") == 0 || strcasecmp(cmd, "uhold") == 0;
    bool requeue = strcasecmp(cmd, "requeue") == 0, requeuehold = strcasecmp(cmd, "requeuehold") == 0;
    if (hold || requeue || requeuehold) {
        if (nw < 2) {
            cli_error(c, "%s: which jobs?", cmd);
            return CLI_USAGE;
        }
        if (hold)
            return cmd_hold(c, nw - 1, words + 1);
        char *args[66];
        int n = 0;
        for (int i = 1; i < nw; i++)
            args[n++] = words[i];
        if (requeuehold)
            args[n++] = "--hold";
        return cmd_requeue(c, n, args);
    }
    cli_error(c, "invalid keyword: %.40s", cmd);
    return CLI_USAGE;
}
