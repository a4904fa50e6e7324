/* config.c - the settings table, the config file and the flags. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/paths.h"
#include "../common/wire.h"
#include "../common/xmem.h"
#include "../lib/sched/dur.h"
#include "../lib/sched/policy.h"

typedef enum {
    CT_STRING,
    CT_NAME,
    CT_NAMES, /* "", or a comma list of names */
    CT_PATH,
    CT_HOSTPORT,
    CT_CONTROLLERS,
    CT_DURATION,
    CT_SIZE,
    CT_COUNT,
    CT_FORMAT,
    CT_LEVEL,
    CT_CHOICE /* one of the words of choices, held as its index */
} config__type;

typedef struct config__setting {
    const char *key;
    config__type type;
    size_t offset;     /* of the char * or uint64_t / int field in config */
    const char *deflt; /* NULL: computed (see config__defaults) or unset */
    const char *help;
} config__setting;

#define OFF(f) offsetof(config, f)

static const config__setting config__table[] = {
    {"name", CT_NAME, OFF(name), NULL, "node name, unique in the network (default: the host name)"},
    {"site", CT_NAME, OFF(site), "local", "institute the node belongs to"},
    {"group", CT_NAMES, OFF(group), "",
     "network group within the site (a switch, a rack): a multi-node job stays in one when it can"},
    {"labels", CT_NAMES, OFF(labels), "", "comma list of this node's features, for jz submit --constraint"},
    {"listen", CT_HOSTPORT, OFF(listen), "127.0.0.1:7070",
     "the one TCP host:port for agents, Raft peers and remote clients"},
    {"http_listen", CT_HOSTPORT, OFF(http_listen), "",
     "host:port of the HTTP listener serving GET /metrics (Prometheus text); empty: none"},
    {"controllers", CT_CONTROLLERS, OFF(controllers), "",
     "comma list name@host:port of the Raft voters (empty: a network of one)"},
    {"state_dir", CT_PATH, OFF(state_dir), NULL,
     "Raft log, snapshots, job output (default /var/lib/jazari as root, else ~/.local/state/jazari)"},
    {"socket", CT_PATH, OFF(socket), NULL, "Unix socket for jz (default <state_dir>/jazarid.sock)"},
    {"topology_xml", CT_PATH, OFF(topology_xml), NULL,
     "emulate the node in this hwloc XML instead of probing"},
    {"heartbeat_interval", CT_DURATION, OFF(heartbeat_interval_ms), "1s", "agent to leader liveness period"},
    {"node_timeout", CT_DURATION, OFF(node_timeout_ms), "5s", "silence after which a node is down"},
    {"node_timeout_rtts", CT_COUNT, OFF(node_timeout_rtts), "10",
     "a node may be silent at least its heartbeat's hold plus this many of its round trips, as TCP measures "
     "them (smoothed, plus four deviations), so that a far node on a slow link is not found silent; 0: "
     "node_timeout alone"},
    {"election_timeout", CT_DURATION, OFF(election_timeout_ms), "1s",
     "Raft election timeout: how soon a new leader takes over (heartbeats are a tenth)"},
    {"election_timeout_rtts", CT_COUNT, OFF(election_timeout_rtts), "5",
     "the election timeout in use is at least this many round trips to the farthest controller, as TCP "
     "measures them (smoothed, plus four deviations), so that a WAN raises it from election_timeout; 0: "
     "election_timeout alone"},
    {"snapshot_threshold", CT_COUNT, OFF(snapshot_threshold), "4096", "log entries between state snapshots"},
    {"kill_grace", CT_DURATION, OFF(kill_grace_ms), "30s",
     "a stopped job's tasks get TERM, then KILL this much later (its time limit, jz cancel)"},
    {"master_port", CT_COUNT, OFF(master_port), "29500",
     "distributed jobs get MASTER_PORT = this + (job id mod 1000), on their first node"},
    {"tmp_dir", CT_PATH, OFF(tmp_dir), "/tmp",
     "each job gets a private directory under it (its TMPDIR), removed when the job ends on the node"},
    {"cluster_name", CT_NAME, OFF(cluster_name), "jazari",
     "the network's name, as jobs see it (SLURM_CLUSTER_NAME)"},
    {"scheduler", CT_NAME, OFF(scheduler), "fcfs-easy",
     "the leader's policy: fcfs-easy, fcfs, sjf-easy, sjf, jazari (aged smallest area first, EASY) or "
     "multifactor (priority: age, fair share, QoS, size; EASY)"},
    {"policy", CT_PATH, OFF(policy), NULL,
     "the scheduling policy file: accounts and fair shares, QoS, priority weights (sched/policy.h)"},
    {"log_format", CT_FORMAT, OFF(log_format), "newest",
     "the newest Raft log format this controller announces: hold a new format back while the "
     "controllers are upgraded one by one (newest, or a number)"},
    {"min_free_disk", CT_SIZE, OFF(min_free_disk), "64MiB",
     "a controller whose state_dir has less free space refuses writes (and a follower sends reads to the "
     "leader) until there is twice this much again"},
    {"join_token", CT_STRING, OFF(join_token), "",
     "a token to join the network with (jz token create --join on a controller), or a new network's "
     "token (jazarid token generate) given to every daemon of it; needed only until this node has its "
     "certificate (in <state_dir>/tls)"},
    {"cert_ttl", CT_DURATION, OFF(cert_ttl_ms), "30d",
     "how long the certificates this network issues last; a daemon renews its own at two thirds"},
    {"max_jobs_per_user", CT_COUNT, OFF(max_jobs_per_user), "10000",
     "jobs one user may have pending or running (root: no limit)"},
    {"max_spec_bytes_per_user", CT_SIZE, OFF(max_spec_bytes_per_user), "256MiB",
     "bytes of job specs (commands, environments, scripts) one user may have pending or running"},
    {"max_connections", CT_COUNT, OFF(max_connections), "0",
     "TCP connections at once (0: the descriptor limit less 256 kept for the local socket and peers)"},
    {"idle_timeout", CT_DURATION, OFF(idle_timeout_ms), "10m",
     "a person's connection that sends nothing (and waits for nothing) this long is closed"},
    {"frame_timeout", CT_DURATION, OFF(frame_timeout_ms), "60s",
     "a frame must arrive whole within this of its first byte"},
    {"max_buffered", CT_SIZE, OFF(max_buffered), "256MiB",
     "bytes of incomplete frames held for all connections together; past it the sender is cut off"},
    {"gpu_isolation", CT_CHOICE, OFF(gpu_isolation), "on",
     "on: a job opens only its own GPUs' devices (the devices cgroup); off: every job sees every GPU"},
    {"emulated_nodes", CT_CHOICE, OFF(emulated_nodes), "off",
     "on (controllers): an agent's certificate also speaks for the emulated nodes named after it "
     "(NAME-00001..., jazarid --emulate-nodes), over its shared connections; for measuring the control "
     "plane at scale, never on a production network"},
    {"cgroup_version", CT_CHOICE, OFF(cgroup_version), "auto",
     "which cgroup hierarchy confines jobs: auto (v2 when it has the memory controller, else v1), 1 or 2"},
    {"gpu_health_interval", CT_DURATION, OFF(gpu_health_interval_ms), "10s",
     "how often each GPU's health is read through NVML (temperature, power, ECC, row remapping, throttling; "
     "XIDs are seen as they come); 0: off"},
    {"gpu_temp_limit", CT_COUNT, OFF(gpu_temp_limit), "0",
     "a GPU hotter than this many degrees C raises temp_high (the policy's health lines say what it does); "
     "0: none (temp_slowdown, at NVIDIA's own threshold, is always on)"},
    {"gpu_xid_hold", CT_DURATION, OFF(gpu_xid_hold_ms), "1h",
     "an XID condition stays this long after its last event, unless the GPU is reset first; 0: until a "
     "reset"},
    {"health_program", CT_STRING, OFF(health_program), "",
     "the site's own health check (as NHC): run every health_interval without a shell; a non-zero exit "
     "(or running past health_timeout) raises the node condition health_program with its first line of "
     "output; \"\": none"},
    {"health_interval", CT_DURATION, OFF(health_interval_ms), "60s",
     "time between the end of one health_program run and the start of the next"},
    {"health_timeout", CT_DURATION, OFF(health_timeout_ms), "30s",
     "a health_program run longer than this is killed (its process group) and counted as failing"},
    {"burnin_program", CT_STRING, OFF(burnin_program), "",
     "the burn-in jz node check runs (and the policy's burnin on-join): a GPU memory pattern test and a "
     "matrix multiply checked against the CPU; exit 0 passes, else its first line of output is the reason; "
     "\"\": jazari-burnin beside jazarid (built when the CUDA toolkit's nvcc is found)"},
    {"burnin_timeout", CT_DURATION, OFF(burnin_timeout_ms), "10m",
     "a burn-in run longer than this is killed (its process group) and counts as failing"},
    {"max_frame", CT_SIZE, OFF(max_frame), "16MiB", "largest protocol frame accepted (1KiB..1GiB)"},
    {"log_level", CT_LEVEL, OFF(log_level), "info", "error, warn, info or debug"},
};

#define CONFIG__N (sizeof config__table / sizeof config__table[0])

/* The words a CT_CHOICE setting takes, space-separated; it holds the index
 * of the one given. */
static const char *config__choices(const config__setting *s)
{
    if (strcmp(s->key, "gpu_isolation") == 0 || strcmp(s->key, "emulated_nodes") == 0)
        return "off on";
    if (strcmp(s->key, "cgroup_version") == 0)
        return "auto 1 2";
    return "";
}

/* Whether a setting is held as a char * (freed by config_free); the
 * others are numbers. */
static bool config__is_string(config__type t)
{
    switch (t) {
    case CT_DURATION:
    case CT_SIZE:
    case CT_COUNT:
    case CT_FORMAT:
    case CT_LEVEL:
    case CT_CHOICE:
        return false;
    default:
        return true;
    }
}

static char **config__str(config *c, const config__setting *s)
{
    return (char **)((char *)c + s->offset);
}

static const config__setting *config__find(const char *key, size_t keylen)
{
    for (size_t i = 0; i < CONFIG__N; i++) {
        const char *k = config__table[i].key;
        if (strlen(k) != keylen)
            continue;
        size_t j = 0;
        /* Flags spell '_' as '-'; accept either everywhere. */
        while (j < keylen && (key[j] == k[j] || (key[j] == '-' && k[j] == '_')))
            j++;
        if (j == keylen)
            return &config__table[i];
    }
    return NULL;
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
    /* The policy's parser (lib/sched/dur.h): one meaning for "30ms"
     * wherever a duration is read; at most ten years. */
    int64_t ms;
    if (dur_ms(s, &ms) != 0 || ms < 0)
        return -1;
    *out = (uint64_t)ms;
    return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},           {"B", 1},           {"K", 1u << 10}, {"KiB", 1u << 10},
                 {"M", 1u << 20},   {"MiB", 1u << 20},  {"G", 1u << 30}, {"GiB", 1u << 30},
                 {"T", 1ull << 40}, {"TiB", 1ull << 40}};
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return -1;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

int config_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon, *h = s;
    size_t hl;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    const char *p = colon + 1;
    if (!*p || strlen(p) > 5)
        return -1;
    unsigned long v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)v;
    return 0;
}

int config_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CONFIG_NAME_MAX || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* name@host:port[,...] */
static int config__valid_controllers(const char *s, char *why, size_t whylen)
{
    if (*s == '\0')
        return 1;
    char item[512];
    const char *p = s;
    int count = 0;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof item) {
            snprintf(why, whylen, "an empty or over-long entry");
            return 0;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        char *at = strchr(item, '@');
        char host[256];
        uint16_t port;
        if (!at) {
            snprintf(why, whylen, "'%.60s' is not name@host:port", item);
            return 0;
        }
        *at = '\0';
        if (!config_valid_name(item)) {
            snprintf(why, whylen, "'%.60s' is not a valid node name", item);
            return 0;
        }
        if (config_parse_hostport(at + 1, host, sizeof host, &port) != 0) {
            snprintf(why, whylen, "'%.60s' is not host:port", at + 1);
            return 0;
        }
        if (++count > 9) {
            snprintf(why, whylen, "more than 9 controllers");
            return 0;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 1;
}

/* "" or up to max names joined by ','. 0 or -1. */
int config_valid_names(const char *s, int max)
{
    int n = 0;
    char one[CONFIG_NAME_MAX + 2];
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len > CONFIG_NAME_MAX || ++n > max)
            return -1;
        memcpy(one, p, len);
        one[len] = '\0';
        if (!config_valid_name(one))
            return -1;
        p += len + (p[len] == ',');
        if (p[-1] == ',' && !*p)
            return -1;
    }
    return 0;
}

/* Validates and stores one value. `where` names the input for messages. */
static int config__set(config *c, const config__setting *s, const char *value, const char *where, char *err,
                       size_t errlen)
{
    char why[256] = "";
    uint64_t u;
    switch (s->type) {
    case CT_NAME:
        if (!config_valid_name(value)) {
            snprintf(why, sizeof why,
                     "1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit",
                     CONFIG_NAME_MAX);
            goto bad;
        }
        break;
    case CT_NAMES:
        if (config_valid_names(value, s->offset == OFF(group) ? 1 : CONFIG_LABELS_MAX) != 0) {
            snprintf(why, sizeof why,
                     "%s of letters, digits, '.', '_' or '-' (each starting with a letter or digit)",
                     s->offset == OFF(group) ? "empty, or one name"
                                             : "empty, or a comma list of up to 32 names");
            goto bad;
        }
        break;
    case CT_STRING:
    case CT_PATH:
        if (strlen(value) > CONFIG_PATH_MAX || (s->type == CT_PATH && *value == '\0')) {
            snprintf(why, sizeof why, "a path of 1 to %d bytes", CONFIG_PATH_MAX);
            goto bad;
        }
        break;
    case CT_HOSTPORT: {
        char host[256];
        uint16_t port;
        unsigned char addr[sizeof(struct in6_addr)];
        bool http = s->offset == OFF(http_listen);
        if (http && *value == '\0') { /* off */
            free(c->http_host);
            c->http_host = NULL;
            c->http_port = 0;
            break;
        }
        if (config_parse_hostport(value, host, sizeof host, &port) != 0 ||
            (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)) {
            snprintf(why, sizeof why,
                     "a numeric IPv4 or IPv6 address and a port from 1 to 65535, such as "
                     "127.0.0.1:%s or [::1]:%s%s",
                     http ? "7071" : "7070", http ? "7071" : "7070", http ? ", or empty for none" : "");
            goto bad;
        }
        char **h = http ? &c->http_host : &c->listen_host;
        free(*h);
        *h = strdup(host);
        *(http ? &c->http_port : &c->listen_port) = port;
        break;
    }
    case CT_CONTROLLERS:
        if (!config__valid_controllers(value, why, sizeof why))
            goto bad;
        break;
    case CT_DURATION: {
        /* 0 turns these off (health.c) */
        bool zero_ok = strcmp(s->key, "gpu_health_interval") == 0 || strcmp(s->key, "gpu_xid_hold") == 0;
        if (config_parse_duration_ms(value, &u) != 0 || (u == 0 && !zero_ok)) {
            snprintf(why, sizeof why, "a duration such as 500ms, 5s, 2m or 1h, %s",
                     zero_ok ? "or 0" : "above zero");
            goto bad;
        }
        *(uint64_t *)((char *)c + s->offset) = u;
        return 0;
    }
    case CT_SIZE:
        if (config_parse_size(value, &u) != 0 || u < WIRE_MAX_FRAME_MIN || u > WIRE_MAX_FRAME_MAX) {
            snprintf(why, sizeof why, "a size such as 64KiB or 16MiB, from 1KiB to 1GiB");
            goto bad;
        }
        *(uint64_t *)((char *)c + s->offset) = u;
        return 0;
    case CT_COUNT: {
        char *end;
        unsigned long long n = strtoull(value, &end, 10);
        /* max_connections 0: from the descriptor limit; gpu_temp_limit 0: none */
        bool temp = strcmp(s->key, "gpu_temp_limit") == 0;
        bool zero_ok = strcmp(s->key, "max_connections") == 0 || temp;
        /* election_timeout_rtts: a small factor (0: off) */
        bool rtts = strcmp(s->key, "election_timeout_rtts") == 0 || strcmp(s->key, "node_timeout_rtts") == 0;
        unsigned long long min = rtts ? 1 : 16, max = temp ? 200 : rtts ? 1000 : 10000000;
        zero_ok = zero_ok || rtts;
        if (!isdigit((unsigned char)*value) || *end || (n < min && !(n == 0 && zero_ok)) || n > max) {
            snprintf(why, sizeof why, "a whole number from %llu to %llu%s", min, max,
                     zero_ok ? ", or 0" : "");
            goto bad;
        }
        *(uint64_t *)((char *)c + s->offset) = n;
        return 0;
    }
    case CT_FORMAT: {
        char *end;
        unsigned long long n = strcmp(value, "newest") == 0 ? 0 : strtoull(value, &end, 10);
        if (n == 0 && strcmp(value, "newest") != 0) {
            snprintf(why, sizeof why, "newest, or a log format number from 1");
            goto bad;
        }
        if (n != 0 && (!isdigit((unsigned char)*value) || *end || n > 1000)) {
            snprintf(why, sizeof why, "newest, or a log format number from 1");
            goto bad;
        }
        *(uint64_t *)((char *)c + s->offset) = n;
        return 0;
    }
    case CT_CHOICE: {
        size_t len = strlen(value);
        uint64_t k = 0;
        for (const char *w = config__choices(s); *w; k++) {
            size_t wl = strcspn(w, " ");
            if (wl == len && strncmp(w, value, len) == 0) {
                *(uint64_t *)((char *)c + s->offset) = k;
                return 0;
            }
            w += wl + (w[wl] == ' ');
        }
        snprintf(why, sizeof why, "one of: %s", config__choices(s));
        goto bad;
    }
    case CT_LEVEL: {
        int l = log_level_parse(value);
        if (l < 0) {
            snprintf(why, sizeof why, "one of error, warn, info, debug");
            goto bad;
        }
        *(int *)((char *)c + s->offset) = l;
        return 0;
    }
    }
    char **field = config__str(c, s);
    free(*field);
    *field = strdup(value);
    return 0;
bad:
    snprintf(err, errlen, "%s: bad value '%.100s' for %s: expected %s", where, value, s->key, why);
    return -1;
}

static int config__defaults(config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < CONFIG__N; i++)
        if (config__table[i].deflt &&
            config__set(c, &config__table[i], config__table[i].deflt, "default", err, errlen) != 0)
            return -1;
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !config_valid_name(host))
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    char *dot = strchr(host, '.');
    if (dot)
        *dot = '\0';
    c->name = strdup(host);
    return 0;
}

static void config__trim(char **s)
{
    while (isspace((unsigned char)**s))
        (*s)++;
    char *e = *s + strlen(*s);
    while (e > *s && isspace((unsigned char)e[-1]))
        *--e = '\0';
}

/* The policy file, read whole and parsed (sched/policy.c). */
static int config__load_policy(config *c, char *err, size_t errlen)
{
    c->pol = xcalloc(1, sizeof *c->pol);
    pol_init(c->pol);
    if (!c->policy)
        return 0;
    int fd = open(c->policy, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)POL_FILE_MAX) {
        snprintf(err, errlen, "policy %s: %s", c->policy,
                 fd < 0 ? strerror(errno) : "not a regular file of at most 4 MiB");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char *text = xcalloc((size_t)st.st_size + 1, 1);
    ssize_t n = read(fd, text, (size_t)st.st_size);
    close(fd);
    int rc = -1;
    char where[CONFIG_PATH_MAX + 8];
    snprintf(where, sizeof where, "policy %s", c->policy);
    if (n != st.st_size)
        snprintf(err, errlen, "%s: cannot read it whole", where);
    else
        rc = pol_parse(c->pol, where, text, (size_t)n, err, errlen);
    free(text);
    return rc;
}

/* A daemon whose policy declares sites is at one of them: a controller
 * list and sites that disagree (a node of "tanger" in a network of casa,
 * rabat and fes) would place and bind jobs by a site nobody declared. */
static int config__site_declared(const config *c, char *err, size_t errlen)
{
    const polsite *ps = &c->pol->sites;
    if (ps->n_sites == 0 || !c->site || !*c->site || polsite_declared(ps, c->site))
        return 0;
    char list[200] = "";
    for (size_t i = 0; i < ps->n_sites && strlen(list) + strlen(ps->sites[i]) + 3 < sizeof list; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", ps->sites[i]);
    snprintf(err, errlen,
             "site %s is not one policy %s declares (%s): add a `site %s` line there, or set this daemon's "
             "site to one of them",
             c->site, c->policy, list, c->site);
    return -1;
}

/* A config file is text: a NUL byte would end a line early, unseen.
 * Reads f (at most CONFIG_FILE_MAX bytes) and rewinds it. */
static int config__check_text(FILE *f, const char *path, char *err, size_t errlen)
{
    char chunk[4096];
    size_t n, line = 1;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        const char *nul = memchr(chunk, '\0', n);
        for (const char *p = chunk; p < (nul ? nul : chunk + n); p++)
            line += *p == '\n';
        if (nul) {
            snprintf(err, errlen,
                     "config %s:%zu: a NUL byte: a config file is text (is this the right file?)", path,
                     line);
            return -1;
        }
    }
    rewind(f);
    return 0;
}

static int config__read_file(config *c, const char *path, char *err, size_t errlen)
{
    struct stat st;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)CONFIG_FILE_MAX) {
        snprintf(err, errlen, "config %s: not a regular file of at most %u bytes", path, CONFIG_FILE_MAX);
        fclose(f);
        return -1;
    }
    if (config__check_text(f, path, err, errlen) != 0) {
        fclose(f);
        return -1;
    }
    char line[CONFIG_LINE_MAX + 2];
    int lineno = 0, rc = 0;
    int set_on[CONFIG__N] = {0}; /* the line each setting was set on */
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char where[CONFIG_PATH_MAX + 32];
        lineno++;
        snprintf(where, sizeof where, "config %s:%d", path, lineno);
        size_t n = strlen(line);
        if (n > CONFIG_LINE_MAX) {
            snprintf(err, errlen, "%s: line longer than %d bytes", where, CONFIG_LINE_MAX);
            rc = -1;
            break;
        }

        char *p = line;
        char *hash = strchr(p, '#');
        if (hash)
            *hash = '\0';
        config__trim(&p);
        if (*p == '\0' || *p == '[') /* blank, comment, or an INI section header */
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(err, errlen, "%s: expected 'key = value', got '%.60s'", where, p);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = p, *value = eq + 1;
        config__trim(&key);
        config__trim(&value);
        const config__setting *s = config__find(key, strlen(key));
        if (!s) {
            snprintf(err, errlen, "%s: unknown setting '%.60s' (jazarid --help lists them)", where, key);
            rc = -1;
            break;
        }
        size_t k = (size_t)(s - config__table);
        if (set_on[k]) {
            snprintf(err, errlen, "%s: %s is set twice (first on line %d): keep one", where, s->key,
                     set_on[k]);
            rc = -1;
            break;
        }
        set_on[k] = lineno;
        rc = config__set(c, s, value, where, err, errlen);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "config %s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    return rc;
}

/* Finds `--config FILE` / `--config=FILE` in argv. */
static const char *config__file_flag(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

int config_load(config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (config__defaults(c, err, errlen) != 0)
        return -1;
    const char *file = config__file_flag(argc, argv);
    if (file) {
        c->config_file = strdup(file);
        if (config__read_file(c, file, err, errlen) != 0)
            return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i] ? argv[i] : "";
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%.100s' (jazarid --help shows the usage)", a);
            return -1;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t klen = eq ? (size_t)(eq - a) : strlen(a);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (klen == 6 && strncmp(a, "config", 6) == 0) {
            if (!eq)
                i++;
            if (!value) {
                snprintf(err, errlen, "flag --config needs a file");
                return -1;
            }
            continue;
        }
        const config__setting *s = config__find(a, klen);
        if (!s) {
            snprintf(err, errlen, "unknown flag '--%.*s' (jazarid --help lists the settings)", (int)klen, a);
            return -1;
        }
        if (!value) {
            snprintf(err, errlen, "flag --%.*s needs a value", (int)klen, a);
            return -1;
        }
        if (!eq)
            i++;
        char where[80];
        snprintf(where, sizeof where, "flag --%.*s", (int)(klen > 60 ? 60 : klen), a);
        if (config__set(c, s, value, where, err, errlen) != 0)
            return -1;
    }
    if (!c->state_dir)
        c->state_dir = paths_default_state_dir();
    if (!c->socket) {
        buf b = BUF_INIT;
        buf_printf(&b, "%s/jazarid.sock", c->state_dir);
        c->socket = b.data;
    }
    /* sun_path holds 108 bytes with its NUL. */
    if (strlen(c->socket) > 107) {
        snprintf(err, errlen, "socket path '%.60s...' is longer than 107 bytes: set a shorter --socket",
                 c->socket);
        return -1;
    }
    if (config__load_policy(c, err, errlen) != 0)
        return -1;
    return config__site_declared(c, err, errlen);
}

void config_free(config *c)
{
    for (size_t i = 0; i < CONFIG__N; i++) {
        if (!config__is_string(config__table[i].type))
            continue;
        char **f = config__str(c, &config__table[i]);
        free(*f);
        *f = NULL;
    }
    free(c->listen_host);
    free(c->http_host);
    free(c->config_file);
    c->listen_host = c->http_host = c->config_file = NULL;
    if (c->pol)
        pol_free(c->pol);
    free(c->pol);
    c->pol = NULL;
}

void config_help(buf *out)
{
    for (size_t i = 0; i < CONFIG__N; i++) {
        const config__setting *s = &config__table[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", s->key);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        buf_printf(out, "  %-22s %s", flag, s->help);
        if (s->deflt && *s->deflt)
            buf_printf(out, " [%s]", s->deflt);
        buf_putc(out, '\n');
    }
}

int config_controllers(const config *c, config_peer *out, char *err, size_t errlen)
{
    const char *p = c->controllers;
    int n = 0;
    if (!p || !*p) {
        out[0].id = 1;
        snprintf(out[0].name, sizeof out[0].name, "%s", c->name);
        snprintf(out[0].address, sizeof out[0].address, "%s", c->listen);
        return 1;
    }
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *at = memchr(p, '@', len);
        if (!at || n == CONFIG_MAX_CONTROLLERS) {
            snprintf(err, errlen, "controllers: bad entry '%.*s'", (int)(len > 60 ? 60 : len), p);
            return -1;
        }
        config_peer *peer = &out[n];
        peer->id = (unsigned long long)++n;
        snprintf(peer->name, sizeof peer->name, "%.*s", (int)(at - p), p);
        snprintf(peer->address, sizeof peer->address, "%.*s", (int)(len - (size_t)(at - p) - 1), at + 1);
        for (int i = 0; i + 1 < n; i++)
            if (strcmp(out[i].name, peer->name) == 0 || strcmp(out[i].address, peer->address) == 0) {
                snprintf(err, errlen, "controllers: '%s' is listed twice", peer->name);
                return -1;
            }
        p += len;
        if (*p == ',')
            p++;
    }
    return n;
}

unsigned long long config_controller_id(const config *c, const config_peer *peers, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(peers[i].name, c->name) == 0)
            return peers[i].id;
    return 0;
}
