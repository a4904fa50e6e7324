/* slurmopt.h - sbatch's options, parsed as sbatch parses them, from a
 * command line and from a script's #SBATCH (and #JZ) lines, and mapped
 * onto a JobSpec. Shared by jz submit and the Slurm front ends.
 *
 * Pure: no I/O. What the mapping needs of the world (the working
 * directory, the host, the environment, array tasks' ids) comes in a
 * slurmopt_ctx. Every option is in one table: mapped onto the spec,
 * understood but without effect here (one warning), or refused because it
 * would change resources, limits or placement in a way we cannot honour. */
#ifndef JZ_SLURMOPT_H
#define JZ_SLURMOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jazari.pb-c.h"

#define SLURMOPT_ENV_BYTES_MAX (1u << 20) /* --export: all of it together */
#define SLURMOPT_ENV_MAX 1024             /* --export: settings (as the leader allows) */
#define SLURMOPT_DEPS_MAX 128             /* dependencies (as the leader allows) */
#define SLURMOPT_ERR_MAX 512

/* One option as given: which, its value (NULL for a flag), where. */
typedef struct slurmopt_occ {
    int id;            /* the table's option */
    const char *name;  /* as written, for messages: "--nodes", "-N" */
    const char *value; /* owned by the slurmopt */
    int line;          /* the script's line; 0: the command line */
} slurmopt_occ;

/* Array task `index` of the array whose first job is array_id: its job id
 * into *id. 0, or -1 with the reason in err (no such job or task). */
typedef int (*slurmopt_resolve_fn)(void *arg, uint64_t array_id, uint32_t index, uint64_t *id, char *err,
                                   size_t errlen);

/* What the mapping needs of the world. */
typedef struct slurmopt_ctx {
    const char *cwd;             /* submit_dir, and the workdir without -D */
    const char *host;            /* submit_host */
    char *const *environ;        /* the submitting environment, for --export (NULL: none) */
    const char *default_name;    /* the job's name without -J (NULL: "") */
    slurmopt_resolve_fn resolve; /* for -d afterok:ID_IDX (NULL: refused) */
    void *resolve_arg;
} slurmopt_ctx;

/* Words of the command line that are not sbatch's but the caller's own
 * (jz's --json, --socket X...): name without "--", whether it takes a
 * value. They are handed back, as "--name=value" words, in passed. */
typedef struct slurmopt_extra {
    const char *name;
    bool has_value;
} slurmopt_extra;

typedef struct slurmopt {
    /* What parsing found. */
    char **pos; /* the positionals: SCRIPT [ARGS...], or CMD [ARGS...] after `--` */
    int npos;
    bool dashdash; /* a `--` came first: a command, not a script */
    char **passed; /* the caller's own options (slurmopt_extra) */
    int npassed;
    /* What slurmopt_build made (pointing into this slurmopt). */
    Jazari__JobSpec spec;
    bool parsable, wait, quiet, wrap;
    const char *cluster; /* -M NAME: sbatch --parsable prints ID;NAME (NULL: not given) */
    /* Warnings (one line each: an option without effect here), and the
     * last error (one line: what is wrong, where, and the fix). */
    char **warnings;
    size_t nwarnings;
    char err[SLURMOPT_ERR_MAX];
    /* Internal. */
    slurmopt_occ *occ;
    size_t nocc, capocc;
    const char *script_path;
    void **owned;
    size_t nowned, capowned;
} slurmopt;

/* Sets o up empty; slurmopt_free frees what it holds (not o itself). */
void slurmopt_init(slurmopt *o);
void slurmopt_free(slurmopt *o);

/* The command line, as sbatch reads it: options (short -N 2, -N2, bundled
 * flags -Hv; long --nodes=2, --nodes 2, or a unique prefix of one) until
 * the first positional (the script: it and what follows are positionals)
 * or `--` (then a command follows). extra: the caller's options, NULL-name
 * terminated (may be NULL). 0, or -1 with the error in o->err. */
int slurmopt_parse_args(slurmopt *o, int argc, char *const *argv, const slurmopt_extra *extra);

/* A script's options: `#SBATCH` and `#JZ` lines (words as the shell splits
 * them: quotes, backslashes, and a `#` after blanks ends the line) before
 * the first line that is neither blank nor a comment. path names it in
 * messages. Options of the command line win over these, whichever order
 * the two calls come in. 0, or -1 with the error (path and line) in o->err. */
int slurmopt_parse_script(slurmopt *o, const char *path, const char *text);

/* Maps every option given onto o->spec (and parsable, wait, quiet, wrap),
 * checking the whole request: 0, or -1 with the error in o->err and
 * nothing to submit. The caller sets the script, argv and batch (but
 * --wrap sets them). */
int slurmopt_build(slurmopt *o, const slurmopt_ctx *ctx);

/* Whether the option named long_name (without "--") was given, on the
 * command line or in the script. */
bool slurmopt_given(const slurmopt *o, const char *long_name);

/* The table's option i, for help and completion: its long name (without
 * "--"), short letter (or 0), whether it takes a value (an optional value
 * counts as none), and whether it does something here (not an option
 * without effect, nor one refused). false past the end. */
typedef struct slurmopt_info {
    const char *name;
    char shrt;
    bool has_value, effective;
} slurmopt_info;
bool slurmopt_option(size_t i, slurmopt_info *out);

/* Parsers of values, for the front ends and the tests. 0, or -1. */
/* --time: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; UNLIMITED or INFINITE is
 * JOB_TIME_UNLIMITED. */
int slurmopt_parse_time(const char *s, uint64_t *seconds);
/* --mem: K M G T suffixes (KiB...), a bare number is MiB. 0 is allowed. */
int slurmopt_parse_size(const char *s, uint64_t *bytes);

#endif
