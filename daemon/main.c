/* main.c - jazarid's command line: the daemon, `jazarid topology`, help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/buf.h"
#include "../common/json.h"
#include "../common/log.h"
#include "../common/pki.h"
#include "../common/wire.h"
#include "../common/xmem.h"
#include "../lib/hw/health.h"
#include "../lib/hw/health_print.h"
#include "../lib/hw/topo.h"
#include "config.h"
#include "daemon.h"
#include "emu.h"
#include "exec/step.h"
#include "jzd.h"

static void usage(FILE *f)
{
    buf b = BUF_INIT;
    config_help(&b);
    fprintf(f,
            "usage: jazarid [--config FILE] [--SETTING VALUE ...]\n"
            "       jazarid topology [--topology-xml FILE] [--name NAME] [--json]\n"
            "       jazarid health [--json] [--xids SECONDS]   (this node's GPU health, once)\n"
            "       jazarid token generate   (a new network's token, for --join-token)\n"
            "       jazarid --check-config [--config FILE] [--SETTING VALUE ...]\n"
            "       jazarid --restore FILE [--config FILE] [--SETTING VALUE ...]   (a controller's\n"
            "               fresh state_dir seeded from a backup of jz admin backup; then runs)\n"
            "       jazarid --emulate-nodes N --topology-xml FILE [--name NAME] [--emulate-cut PCT]\n"
            "               [--SETTING VALUE ...]   (N emulated agents NAME-00001..., docs/scale.md)\n"
            "       jazarid --help | --version\n"
            "\n"
            "Runs the Jazari daemon in the foreground (logs on stderr; SIGTERM or\n"
            "SIGINT stops it). Settings, as --flag or as `key = value` in FILE:\n%s",
            buf_str(&b));
    buf_free(&b);
}

/* `jazarid topology`: print the node's hardware and exit. */
static int cmd_topology(int argc, char **argv)
{
    const char *xml = NULL, *name = NULL;
    bool as_json = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            as_json = true;
        } else if (strcmp(a, "--topology-xml") == 0 || strcmp(a, "--name") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "jazarid topology: %s needs a value\n", a);
                return 2;
            }
            if (a[2] == 't')
                xml = argv[++i];
            else
                name = argv[++i];
        } else if (strncmp(a, "--topology-xml=", 15) == 0) {
            xml = a + 15;
        } else if (strncmp(a, "--name=", 7) == 0) {
            name = a + 7;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: jazarid topology [--topology-xml FILE] [--name NAME] [--json]\n"
                   "Prints this node's hardware as the daemon sees it (or the machine in\n"
                   "FILE, an hwloc XML) and exits.\n");
            return 0;
        } else {
            fprintf(stderr, "jazarid topology: unknown argument '%.100s' (try --help)\n", a);
            return 2;
        }
    }
    if (name && !config_valid_name(name)) {
        fprintf(stderr, "jazarid topology: bad --name '%.100s'\n", name);
        return 2;
    }
    topo *t;
    char err[512];
    topo_load_opts opts = {.xml_path = xml, .name = name, .probe_gpus = true};
    if (topo_load(&opts, &t, err, sizeof err) != 0) {
        fprintf(stderr, "jazarid topology: %s\n", err);
        return 2;
    }
    buf out = BUF_INIT;
    if (as_json) {
        json j;
        json_init(&j, &out, true);
        topo_to_json(t, &j);
        buf_putc(&out, '\n');
    } else {
        topo_print(t, &out);
    }
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    topo_free(t);
    return fflush(stdout) == 0 ? 0 : 1;
}

static void health_no_wake(void *arg)
{
    (void)arg;
}

/* `jazarid health`: every GPU's health through NVML, once, as the daemon
 * samples it (and the XIDs of the next SECONDS with --xids): the real
 * NVML path, checked by hand on a GPU machine. */
static int cmd_health(int argc, char **argv)
{
    bool as_json = false;
    long xid_s = 0;
    for (int i = 0; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "--xids") == 0 && i + 1 < argc &&
                   (xid_s = strtol(argv[i + 1], &end, 10)) >= 0 && xid_s <= 3600 && end && !*end) {
            i++;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: jazarid health [--json] [--xids SECONDS]\n"
                   "Prints every GPU's health as the daemon samples it through NVML (temperature, power,\n"
                   "utilisation, memory, ECC, row remapping, retired pages, throttling) and the conditions\n"
                   "it makes; --xids waits that long for XID events first. $JAZARI_NVML_LIB names the\n"
                   "library (default libnvidia-ml.so.1). Exit status 1 when NVML is unusable.\n");
            return 0;
        } else {
            fprintf(stderr, "jazarid health: unknown or incomplete argument '%.100s' (try --help)\n",
                    argv[i]);
            return 2;
        }
    }
    char err[512];
    health *h = health_open(NULL, err, sizeof err);
    if (!h) {
        fprintf(stderr, "jazarid health: no GPU health: %s\n", err);
        return 1;
    }
    size_t n = health_gpu_count(h);
    health_xid xids[HEALTH_XID_QUEUE];
    size_t nx = 0;
    if (xid_s > 0) {
        if (health_xids_start(h, health_no_wake, NULL, err, sizeof err) != 0)
            fprintf(stderr, "jazarid health: %s\n", err);
        struct timespec ts = {xid_s, 0};
        nanosleep(&ts, NULL);
        nx = health_xids_take(h, xids, HEALTH_XID_QUEUE, NULL);
    }
    health_sample *s = xcalloc(n, sizeof *s);
    health_state *st = xcalloc(1, sizeof *st);
    health_sample_all(h, s, n);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    health_derive(st, NULL, s, n, xids, nx, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    buf out = BUF_INIT;
    if (as_json) {
        json j;
        json_init(&j, &out, true);
        health_to_json(s, n, st->conds, st->n_conds, &j);
        buf_putc(&out, '\n');
    } else {
        health_print(s, n, st->conds, st->n_conds, &out);
    }
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    free(s);
    free(st);
    health_close(h);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* `jazarid token generate`: a new network's token, made offline. */
static int cmd_token(int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "generate") == 0) {
        pki_token t;
        char s[PKI_TOKEN_MAX + 1];
        pki_token_new_network(&t);
        pki_token_format(&t, s, sizeof s);
        printf("%s\n", s);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        printf("usage: jazarid token generate\n"
               "Prints a new network's token. Start every daemon of the new network (controllers and\n"
               "agents) with it as --join-token (or join_token in the config file): they make the\n"
               "network's CA from it and talk TLS from the first byte. Whoever holds it can make\n"
               "certificates of the network: keep it like a private key, and join later nodes with\n"
               "tokens from `jz token create --join`.\n");
        return 0;
    }
    fprintf(stderr, "usage: jazarid token generate\n");
    return 2;
}

int main(int argc, char **argv)
{
    /* libuv's thread pool carries libraft's disk work and the history's
     * queries (at most 4 at once): room for both. Before any libuv call. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    if (argc == 3 && strcmp(argv[1], "step") == 0)
        return step_main(argv[2]); /* a job's supervisor, started by the daemon */
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return cmd_token(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "health") == 0) {
        log_set_program("jazarid health");
        log_set_level(LOG_WARN);
        return cmd_health(argc - 2, argv + 2);
    }
    if (argc > 1 && strcmp(argv[1], "topology") == 0) {
        log_set_program("jazarid topology");
        log_set_level(LOG_WARN);
        return cmd_topology(argc - 2, argv + 2);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("jazarid %s (%s), protocol %d\n", JZ_VERSION, JZ_GIT_REV, WIRE_PROTOCOL_VERSION);
            return 0;
        }
    }
    if (emu_wanted(argc, argv))
        return emu_main(argc, argv);
    /* --check-config: read the settings (and the policy file they name) as
     * the daemon would, say the first problem in one line and exit: the
     * package's units and postinst run it before (re)starting a daemon. */
    bool check_only = false;
    /* --restore FILE: a flag, never a setting (a config file that kept it
     * would restore on every start). */
    const char *restore = NULL;
    int n_args = 0;
    char **args = xcalloc((size_t)argc + 1, sizeof *args);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
        } else if (strcmp(argv[i], "--restore") == 0 || strncmp(argv[i], "--restore=", 10) == 0) {
            if (argv[i][9] == '=') {
                restore = argv[i] + 10;
            } else if (i + 1 < argc) {
                restore = argv[++i];
            } else {
                fprintf(stderr, "jazarid: --restore needs a backup file (from jz admin backup FILE)\n");
                free(args);
                return 2;
            }
        } else {
            args[n_args++] = argv[i];
        }
    }
    config cfg;
    char err[512];
    int loaded = config_load(&cfg, n_args, args, err, sizeof err);
    free(args);
    if (loaded != 0) {
        fprintf(stderr, "jazarid: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    if (check_only) {
        printf("jazarid: settings good (%s)\n", cfg.config_file ? cfg.config_file : "no config file");
        config_free(&cfg);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    log_set_level((log_level)cfg.log_level);
    if (restore && backup_restore(&cfg, restore, err, sizeof err) != 0) {
        fprintf(stderr, "jazarid: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    xmem_keep_heap(); /* the leader's pass allocates and frees tens of MiB a pass */
    int status = daemon_run(&cfg, restore != NULL);
    config_free(&cfg);
    return status;
}
