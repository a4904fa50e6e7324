/* cli.h - what every jz command shares: options, the connection to the
 * local daemon, output, and the exit status convention (INTERFACE.md):
 * 0 success, 1 the request was refused (reason on stderr), 2 bad usage. */
#ifndef JZ_CLI_H
#define JZ_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/buf.h"
#include "../common/json.h"
#include "../common/views.h"
#include "../common/wire.h"

enum { CLI_OK = 0, CLI_REFUSED = 1, CLI_USAGE = 2 };

/* Options every command takes. */
typedef struct cli {
    const char *socket;      /* --socket, else $JAZARI_SOCKET, else the default */
    const char *server;      /* --server HOST:PORT, else $JAZARI_SERVER: TLS to a controller */
    const char *credentials; /* --credentials FILE, else $JAZARI_CREDENTIALS */
    bool json;               /* --json */
    double timeout_s;        /* --timeout for the daemon's answer */
    const char *command;     /* the command's name, for messages */
    int before_dashdash;     /* positionals before `--`, or -1 if none was given */
    bool slurm;              /* a Slurm front end (client/slurm.c): "CMD: error: ..." and Slurm's output */
    bool describe;           /* jz CMD --help: cli_parse lists the options instead */
} cli;

/* --- options ------------------------------------------------------------ */

typedef enum { CLI_FLAG, CLI_STRING, CLI_LIST } cli_opt_kind;

/* Values of a repeatable option. */
#define CLI_LIST_MAX 1024
typedef struct cli_list {
    const char *items[CLI_LIST_MAX];
    size_t n;
} cli_list;

typedef struct cli_opt {
    const char *name; /* without the leading "--" */
    cli_opt_kind kind;
    void *target; /* bool * (CLI_FLAG), const char ** (CLI_STRING), cli_list * (CLI_LIST) */
} cli_opt;

/* Parses argv GNU style (options before or after positionals, `--` ends
 * them, `--opt=value` or `--opt value`), taking the shared options into
 * c and the command's own into opts (NULL-name terminated). Positionals
 * land in pos (at most maxpos). Returns the number of positionals, or -1
 * after printing one line naming the bad argument. */
int cli_parse(cli *c, int argc, char **argv, const cli_opt *opts, const char **pos, int maxpos);
/* With c->describe set (jz CMD --help), cli_parse parses nothing: it
 * prints the command's options and the shared ones on stdout, one per
 * line, in the form "  --name", "  --name VALUE" or "  -f", and returns
 * -1. The form is stable: the shell completion and the man pages' test
 * read it. */
void cli_describe_opts(const cli_opt *opts);
/* The options every command takes, in that form. */
void cli_describe_shared(void);

/* --- the daemon ------------------------------------------------------------ */

typedef struct cli_conn cli_conn;

/* Connects to the daemon and exchanges hellos: over TLS, with a person's
 * credentials, when --credentials (or $JAZARI_CREDENTIALS) is set; else on
 * the local Unix socket. Returns NULL after printing why (with what to do)
 * on stderr. */
cli_conn *cli_connect(const cli *c);
void cli_close(cli_conn *k);
/* Sends req (its request_id and version are filled in) and waits for the
 * reply. Returns the reply (free with wire_msg_free); NULL after printing
 * the transport problem. A reply whose error code is not OK is returned
 * too: use cli_refused. */
wire_msg *cli_call(cli_conn *k, Jazari__Envelope *req);
/* If the reply carries an error, prints it and returns true. */
bool cli_refused(const cli *c, const wire_msg *reply);
/* The daemon's hello reply. */
const char *cli_daemon_name(const cli_conn *k);
const char *cli_daemon_version(const cli_conn *k);
const char *cli_daemon_role(const cli_conn *k);
const char *cli_daemon_site(const cli_conn *k);

/* --- output ----------------------------------------------------------------- */

/* Starts a JSON document on a buffer (pretty-printed). */
void cli_json_begin(json *j, buf *b);
/* Writes the buffer to stdout (adding a final newline) and frees it.
 * Returns CLI_OK, or CLI_REFUSED if stdout failed. What it writes has its
 * control characters and bytes that are not UTF-8 escaped (utf8_term):
 * other people's text never acts on the terminal. */
int cli_flush(buf *b);
/* The same, without the newline, leaving b empty for more: 0 or -1. */
int cli_write(buf *b);
/* "jz COMMAND: message" on stderr. */
void cli_error(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- commands: one file per family ------------------------------------------ */

typedef struct cli_command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv); /* argv: after the command */
    const char *args;                          /* "[NAME]" */
    const char *summary;
} cli_command;

/* client/cmd_trust.c */
int cmd_token(cli *c, int argc, char **argv);
int cmd_audit(cli *c, int argc, char **argv);
int cmd_node_revoke(cli *c, const char *name);
/* client/cmd_node.c */
int cmd_nodes(cli *c, int argc, char **argv);
int cmd_node(cli *c, int argc, char **argv);
/* What jz nodes adds to a node from its brief topology and the jobs
 * (common/views.h: the daemon's /api/nodes shows the same). */
typedef view_node_hw cli_node_hw;
/* The nodes (a nodes reply: free it), with each one's hardware and use
 * into *hw (parallel to the reply's nodes: free it); NULL after saying why. */
wire_msg *cli_fetch_nodes(cli *c, cli_node_hw **hw, int *status);
/* client/cmd_info.c */
int cmd_ping(cli *c, int argc, char **argv);
int cmd_status(cli *c, int argc, char **argv);
/* client/cmd_job.c */
int cmd_submit(cli *c, int argc, char **argv);
/* (cmd_submit.c) jz submit --help's list: "options:", sbatch's options
 * that act here but those named in except (NULL-terminated, may be NULL),
 * and the shared ones, in cli_describe_opts's form. */
void cli_describe_sbatch(const char *const *except);
int cmd_queue(cli *c, int argc, char **argv);
int cmd_show(cli *c, int argc, char **argv);
int cmd_cancel(cli *c, int argc, char **argv);
int cmd_wait(cli *c, int argc, char **argv);
int cmd_release(cli *c, int argc, char **argv);
/* "ID" or "ARRAYID_INDEX" into a job id: 0, or -1 after saying why (*status). */
int cli_job_ref(cli *c, const char *s, uint64_t *id, int *status);
/* jz cancel, release, hold, requeue [--hold]: jobs by id (an array's id:
 * its tasks) and by the queue's filters. */
enum { CLI_JOBS_CANCEL, CLI_JOBS_RELEASE, CLI_JOBS_HOLD, CLI_JOBS_REQUEUE, CLI_JOBS_REQUEUE_HOLD };
int cli_jobs_op(cli *c, int argc, char **argv, int op);
/* client/cmd_jobops.c */
int cmd_hold(cli *c, int argc, char **argv);
int cmd_requeue(cli *c, int argc, char **argv);
int cmd_update(cli *c, int argc, char **argv);
/* jz cancel JOB.STEP...: one step of a running job each. */
int cli_cancel_steps(cli *c, int argc, char **argv);
/* Asks for step `step` of job `id` to be cancelled, on a fresh connection:
 * CLI_OK, or the exit status after saying why (quiet: without a word). */
int cli_cancel_step(cli *c, uint64_t id, uint32_t step, bool quiet);
/* A job id argument: 0, or -1 after saying what is wrong. */
int cli_job_id(cli *c, const char *s, uint64_t *id);
/* Calls fn on every job the daemon lists to the caller (all: ended ones
 * too) with an id above `after`, page by page, until fn returns nonzero.
 * CLI_OK, or the exit status after saying why. */
int cli_each_job(cli *c, bool all, uint64_t after, int (*fn)(const Jazari__Job *job, void *arg), void *arg);
/* One job from the daemon (a show reply: free it), or NULL after saying why. */
wire_msg *cli_fetch_job(cli *c, uint64_t id, int *status);

/* jz queue's --format engine (squeue -o): "%[.|-][WIDTH]TYPE" fields,
 * "%%", other characters as they are; job NULL: the header line. 0, or -1
 * on a bad field (b then holds nothing useful). */
int cli_job_format(buf *b, const char *fmt, const Jazari__Job *job, int64_t now_ms);
/* A job's state as Slurm names it ("PENDING"), its id as Slurm shows it
 * ("ARRAYID_INDEX" for an array's task), whether it has ended. */
const char *cli_job_state(Jazari__JobState s);
const char *cli_job_id_str(const Jazari__Job *job, char *s, size_t len);
bool cli_job_ended(const Jazari__Job *job);
/* One line of a "%[.|-][WIDTH]TYPE" format (squeue -o, sinfo -o): other
 * characters as they are, "%%" a percent sign; field(b, type, arg, ctx)
 * appends a field's value (arg NULL: its header) and returns 0, or -1 for
 * an unknown type. A value is cut to its width, padded on the right (or on
 * the left after "."). 0, or -1 on a bad format. */
typedef int (*cli_field_fn)(buf *b, char type, const void *arg, void *ctx);
int cli_format(buf *b, const char *fmt, cli_field_fn field, const void *arg, void *ctx);
/* A moment as UTC ISO 8601 ("2026-12-06T10:00:00Z"), or NULL when unset
 * (ms <= 0); as local time to the second ("-" when unset). */
const char *cli_utc_time(int64_t ms, char *s, size_t len);
const char *cli_local_time(int64_t ms, char *s, size_t len);
/* Now, in Unix ms. */
int64_t cli_now_ms(void);

/* Slurm's time formats: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S". */
int cli_parse_time_limit(const char *s, uint64_t *seconds);
/* "90s", "30m", "1h", "30d", or plain seconds: into seconds. 0 or -1
 * (client/cmd_trust.c). */
int cli_parse_ttl(const char *s, uint64_t *out);
/* client/cmd_web.c */
int cmd_web(cli *c, int argc, char **argv);
/* A moment: "now" (0), "+DURATION" or "-DURATION" from now (DURATION as
 * --time), "YYYY-MM-DDTHH:MM[:SS]" in local time, or "@UNIX_SECONDS".
 * Unix ms into out; 0, or -1 when it does not parse. */
int cli_parse_when(const char *s, int64_t *out);
/* --since WHEN (cli_parse_when) into *out, or one line saying what it
 * takes: 0, or -1. */
int cli_opt_since(const cli *c, const char *since, int64_t *out);
/* --OPT WHEN, a moment (cli_parse_when, or a plain YYYY-MM-DD: its
 * midnight; "now": this moment, not 0) into *out, or one line naming the
 * option and what it takes: 0, or -1. */
int cli_opt_when(const cli *c, const char *opt, const char *s, int64_t *out);
/* --OPT N, a count of what (from 1 to max) into *out, or one line saying
 * so: 0, or -1. */
int cli_opt_count(const cli *c, const char *opt, const char *s, const char *what, unsigned long max,
                  unsigned long *out);

/* client/cmd_health.c */
int cmd_drain(cli *c, int argc, char **argv);
int cmd_resume(cli *c, int argc, char **argv);
int cmd_events(cli *c, int argc, char **argv);

/* client/cmd_backup.c: jz admin backup FILE, jz admin backup --verify FILE */
int cmd_admin(cli *c, int argc, char **argv);

/* client/cmd_admin.c */
int cmd_reserve(cli *c, int argc, char **argv);
int cmd_unreserve(cli *c, int argc, char **argv);
int cmd_reservations(cli *c, int argc, char **argv);
int cmd_shares(cli *c, int argc, char **argv);

/* client/cmd_step.c */
int cmd_run(cli *c, int argc, char **argv);
int cmd_attach(cli *c, int argc, char **argv);
/* How step_follow follows. */
typedef struct step_follow_opts {
    bool label;            /* each line after its task's rank (srun --label) */
    bool raw;              /* bytes as they come (a terminal's), not whole lines */
    bool stop_on_signal;   /* alloc_interrupted() ends the following: STEP_STOPPED */
    bool cancel_on_signal; /* SIGINT or SIGTERM cancels the step (jz run inside a job); followed until it ends
                            */
    /* Between two polls, for up to ms (NULL: a sleep): >0 when there was
     * activity (keys sent: poll again soon), 0 none, <0 stop (STEP_STOPPED). */
    int (*wait)(void *arg, int ms);
    void *arg;
} step_follow_opts;
/* Follows step `step` of job id: every task's output and error, from the
 * start, relayed whole line by line, until the step has ended and all is
 * read. The step's exit status (0 when it COMPLETED), CLI_REFUSED after
 * saying why, or STEP_STOPPED when stopped (o) before the step ended. */
#define STEP_STOPPED 1000
int step_follow(cli *c, uint64_t id, uint32_t step, const step_follow_opts *o);

/* client/cmd_pty.c: srun --pty, the step's one task on a terminal; own:
 * the allocation is ours (ended by the caller). The exit status. */
int step_pty(cli *c, uint64_t id, uint32_t step, bool own);

/* client/cmd_alloc.c */
int cmd_alloc(cli *c, int argc, char **argv);
/* An allocation from sbatch's options in argv (no command), granted: its
 * id, after saying so on stderr as prog (salloc, srun) does; 0 after
 * saying why (exit status in *status), cancelled if it was queued. From
 * then on SIGINT, SIGTERM and SIGHUP only set alloc_interrupted. */
uint64_t alloc_create(cli *c, const char *prog, int argc, char **argv, int *status);
bool alloc_interrupted(void);
/* Ends a running allocation COMPLETED (a pending one: cancelled). */
int alloc_complete(cli *c, uint64_t id);
int alloc_cancel(cli *c, uint64_t id);

/* client/cmd_acct.c: accounting (issue 14) */
int cmd_history(cli *c, int argc, char **argv);
int cmd_eff(cli *c, int argc, char **argv);
int cmd_usage(cli *c, int argc, char **argv);
int cmd_grant(cli *c, int argc, char **argv);
int cmd_balance(cli *c, int argc, char **argv);
int cmd_invoice(cli *c, int argc, char **argv);
/* What the history's replies say of money: its currency, minor digits. */
typedef struct cli_hist_info {
    char currency[16];
    unsigned minor_digits;
    bool allow_unsupported; /* set by the caller: a daemon without a history is no error... */
    bool unsupported;       /* ...and this says it had none */
} cli_hist_info;
typedef int (*cli_hist_fn)(const Jazari__HistJob *job, void *arg);
/* Calls fn on every finished job of the history that q selects (its
 * paging fields are the function's), page after page, by end time then
 * id, until fn returns nonzero; info (may be NULL) gets the currency.
 * CLI_OK, or the exit status after saying why. */
int cli_each_hist(cli *c, Jazari__HistoryRequest *q, cli_hist_fn fn, void *arg, cli_hist_info *info);

/* client/cmd_logs.c */
int cmd_logs(cli *c, int argc, char **argv);

/* Sends one request body on a fresh connection and returns the reply, or
 * NULL after printing why (*status: the exit status then). A reply of
 * another body than `want` is refused too. */
wire_msg *cli_request(cli *c, Jazari__Envelope *req, Jazari__Envelope__BodyCase want, int *status);
/* The same, returning a refusal too (its error unprinted: the caller reads
 * wire_msg_env(m)->error); NULL only after printing a transport problem. */
wire_msg *cli_request_raw(cli *c, Jazari__Envelope *req, int *status);

#endif
