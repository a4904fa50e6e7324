/* config.h - every setting of jazarid in one table: name, type, default,
 * validation and help (like redis' config.c). A setting comes from the
 * built-in default, then the config file (`key = value`), then a flag
 * (`--key value`, `-` for `_`); the last one wins. */
#ifndef JZ_CONFIG_H
#define JZ_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

#define CONFIG_NAME_MAX 63
#define CONFIG_PATH_MAX 4095
#define CONFIG_FILE_MAX (1u << 20)
#define CONFIG_LINE_MAX 4096
#define CONFIG_LABELS_MAX 32

typedef struct config {
    char *name;
    char *site;
    char *group;       /* network group, "" none */
    char *labels;      /* comma list, "" none */
    char *listen;      /* "host:port" as given */
    char *listen_host; /* parsed from listen */
    uint16_t listen_port;
    char *http_listen; /* "host:port" of the metrics listener, "" none */
    char *http_host;   /* parsed from http_listen; NULL when off */
    uint16_t http_port;
    char *controllers; /* comma list name@host:port; "" = a network of one */
    char *state_dir;
    char *socket;
    char *topology_xml; /* NULL: probe this host */
    uint64_t heartbeat_interval_ms;
    uint64_t node_timeout_ms;
    uint64_t max_frame;
    char *join_token;                                                          /* "" none */
    uint64_t max_connections, idle_timeout_ms, frame_timeout_ms, max_buffered; /* net_limits */
    uint64_t max_jobs_per_user, max_spec_bytes_per_user;
    uint64_t cert_ttl_ms; /* certificates issued last this long */
    uint64_t election_timeout_ms;
    /* the election timeout in use is at least this many measured round trips; 0: the setting alone */
    uint64_t election_timeout_rtts;
    uint64_t node_timeout_rtts;
    uint64_t snapshot_threshold; /* entries between snapshots */
    uint64_t kill_grace_ms;      /* TERM to KILL when a job is stopped */
    uint64_t gpu_isolation;      /* 1: jobs fenced to their GPUs (the devices cgroup) */
    uint64_t emulated_nodes;     /* 1: an agent may speak for NAME-00001... (daemon/emu.c) */
    uint64_t cgroup_version;     /* 0: the one found, 1 or 2 */
    uint64_t master_port;        /* MASTER_PORT = this + job id mod 1000 */
    uint64_t log_format;
    uint64_t min_free_disk;
    /* below this much free under state_dir, a controller refuses writes */ /* the newest log format
                                                                               announced; 0: the newest
                                                                               this release writes */
    uint64_t gpu_health_interval_ms; /* NVML health samples; 0: off (daemon/health.c) */
    uint64_t gpu_temp_limit;         /* degrees C for temp_high; 0: none */
    uint64_t gpu_xid_hold_ms;        /* an XID condition outlives its event this long; 0: until a reset */
    char *health_program;            /* the site's check; "" none */
    uint64_t health_interval_ms, health_timeout_ms;
    char *burnin_program; /* jz node check's; "": jazari-burnin beside jazarid (daemon/burnin.c) */
    uint64_t burnin_timeout_ms;
    char *tmp_dir;      /* jobs' private directories go under it */
    char *cluster_name; /* SLURM_CLUSTER_NAME */
    char *scheduler;    /* the policy: fcfs-easy, jazari, ... (sched/plan.h) */
    char *policy;       /* the policy file, or NULL */
    struct pol *pol;    /* read from it (the defaults without one); never NULL once loaded */
    int log_level;
    char *config_file; /* the file read, if any */
} config;

/* Fills c with the defaults, then the file named by `--config FILE` (if
 * any), then the flags in argv[0..argc). Returns 0, or -1 with one line in
 * err naming the input (flag, file:line) and what is wrong. On failure c
 * still owns what it allocated: call config_free either way. */
int config_load(config *c, int argc, char **argv, char *err, size_t errlen);
void config_free(config *c);

/* One entry of `controllers`: its Raft id is its position, from 1. */
#define CONFIG_MAX_CONTROLLERS 9
typedef struct config_peer {
    unsigned long long id;
    char name[CONFIG_NAME_MAX + 1];
    char address[256];
} config_peer;

/* The controllers, in order: the `controllers` setting, or this node alone
 * when it is empty. Returns their number, or -1 with err (a name or an
 * address listed twice). */
int config_controllers(const config *c, config_peer *out, char *err, size_t errlen);
/* This node's Raft id among them, 0 if it is not a controller. */
unsigned long long config_controller_id(const config *c, const config_peer *peers, int n);

/* The settings and their meaning, for `jazarid --help`. */
void config_help(buf *out);

/* Parsers shared with the client and tests. Each returns 0 or -1. */
int config_parse_duration_ms(const char *s, uint64_t *out);
int config_parse_size(const char *s, uint64_t *out);
/* "host:port", "[v6]:port"; host copied into host (hostlen bytes). */
int config_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);
/* A node or site name: 1-63 of [A-Za-z0-9._-], starting alphanumeric: 1 if so, else 0. */
int config_valid_name(const char *s);
/* "" or up to max such names joined by ',': 0, else -1. */
int config_valid_names(const char *s, int max);

#endif
