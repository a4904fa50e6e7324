/* test_slurmopt.c - sbatch's options: reading, mapping, errors, warnings. */
#include "client/slurmopt.h"
#include "common/jobspec.h"
#include "test.h"

static char *so_env[] = {"HOME=/home/amina", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PROJECT=vision", NULL};

static int so_resolve(void *arg, uint64_t array_id, uint32_t index, uint64_t *id, char *err, size_t errlen)
{
    (void)arg;
    if (array_id != 100 || index > 9) {
        snprintf(err, errlen, "array %llu has no task %u", (unsigned long long)array_id, index);
        return -1;
    }
    *id = 100 + index; /* tasks 0-9 are jobs 100-109 */
    return 0;
}

static const slurmopt_ctx so_ctx = {"/home/amina/run", "login1", so_env, "job.sh", so_resolve, NULL};

/* Parses a command line (NULL-terminated words) and a script (or NULL),
 * then builds: 0 or -1. */
static int so_run(slurmopt *o, const char *script, const char *const *words)
{
    int n = 0;
    while (words && words[n])
        n++;
    slurmopt_init(o);
    if (slurmopt_parse_args(o, n, (char *const *)words, NULL) != 0)
        return -1;
    if (script && slurmopt_parse_script(o, "job.sh", script) != 0)
        return -1;
    return slurmopt_build(o, &so_ctx);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

TEST(slurmopt_short_long_forms)
{
    const char *const *forms[] = {ARGS("-N", "2"), ARGS("-N2"), ARGS("--nodes=2"), ARGS("--nodes", "2")};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        slurmopt o;
        CHECK_EQ_INT(so_run(&o, NULL, forms[i]), 0);
        CHECK_EQ_INT(o.spec.nodes, 2);
        slurmopt_free(&o);
    }
    slurmopt o;
    REQUIRE(so_run(&o, NULL, ARGS("--partit=gpu")) == 0); /* a unique prefix, as getopt_long */
    CHECK_EQ_STR(o.spec.partition, "gpu");
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("-HvQ", "-J", "x", "--", "echo", "hi")) == 0);
    CHECK(o.spec.hold && o.quiet);
    CHECK_EQ_STR(o.spec.name, "x");
    CHECK(o.dashdash);
    CHECK_EQ_INT(o.npos, 2);
    CHECK_EQ_STR(o.pos[1], "hi");
    slurmopt_free(&o);
    /* The script stops the options: what follows is its arguments. */
    REQUIRE(so_run(&o, NULL, ARGS("-n", "4", "train.sh", "--nodes", "8")) == 0);
    CHECK(!o.dashdash);
    CHECK_EQ_INT(o.npos, 3);
    CHECK_EQ_INT(o.spec.nodes, 1);
    CHECK_EQ_INT(o.spec.tasks_per_node, 4);
    slurmopt_free(&o);
}

TEST(slurmopt_names_places_outputs)
{
    slurmopt o;
    REQUIRE(
        so_run(&o, NULL,
               ARGS("-o", "logs/%x-%j.out", "-e", "err-%A_%a.txt", "--open-mode=truncate", "-D", "/scratch",
                    "-A", "lab", "-q", "high", "-p", "gpu,debug", "--reservation=r1", "-C", "ib&nvme")) == 0);
    CHECK_EQ_STR(o.spec.name, "job.sh");
    CHECK_EQ_STR(o.spec.output, "logs/%x-%j.out");
    CHECK_EQ_STR(o.spec.error, "err-%A_%a.txt");
    CHECK(o.spec.output_truncate);
    CHECK_EQ_STR(o.spec.workdir, "/scratch");
    CHECK_EQ_STR(o.spec.submit_dir, "/home/amina/run");
    CHECK_EQ_STR(o.spec.submit_host, "login1");
    CHECK_EQ_STR(o.spec.account, "lab");
    CHECK_EQ_STR(o.spec.qos, "high");
    CHECK_EQ_STR(o.spec.partition, "gpu,debug");
    CHECK_EQ_STR(o.spec.reservation, "r1");
    CHECK_EQ_STR(o.spec.constraint, "ib,nvme");
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--open-mode", "append")) == 0);
    CHECK(!o.spec.output_truncate);
    CHECK_EQ_STR(o.spec.workdir, "/home/amina/run"); /* no -D: where it was submitted */
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-C", "a|b")), -1);
    CHECK(strstr(o.err, "only labels that must all hold"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--constraint=[a*2&b]")), -1);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--open-mode=sometimes")), -1);
    slurmopt_free(&o);
}

TEST(slurmopt_tasks_and_nodes)
{
    slurmopt o;
    REQUIRE(so_run(&o, NULL, ARGS("-N", "3", "-n", "8")) == 0);
    CHECK_EQ_INT(o.spec.nodes, 3);
    CHECK_EQ_INT(o.spec.ntasks, 8);
    CHECK_EQ_INT(o.spec.tasks_per_node, 3); /* ceil(8/3) */
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("-n", "10", "--ntasks-per-node=4")) == 0);
    CHECK_EQ_INT(o.spec.nodes, 3);
    CHECK_EQ_INT(o.spec.tasks_per_node, 4);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("-n", "6")) == 0);
    CHECK_EQ_INT(o.spec.nodes, 1);
    CHECK_EQ_INT(o.spec.tasks_per_node, 6);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("-N", "2-4", "--tasks-per-node", "2", "-c", "8")) == 0);
    CHECK_EQ_INT(o.spec.nodes, 2);
    CHECK_EQ_INT(o.spec.nodes_max, 4);
    CHECK_EQ_INT(o.spec.tasks_per_node, 2);
    CHECK_EQ_INT(o.spec.cpus_per_task, 8);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-N", "4", "-n", "2")), -1);
    CHECK(strstr(o.err, "fewer than --nodes"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-N", "0")), -1);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-N", "4-2")), -1);
    slurmopt_free(&o);
}

TEST(slurmopt_gpus)
{
    slurmopt o;
    REQUIRE(so_run(&o, NULL, ARGS("--gres=gpu:a100:4")) == 0);
    CHECK_EQ_INT(o.spec.gpus_per_node, 4);
    CHECK_EQ_STR(o.spec.gpu_model, "a100");
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--gres", "gpu:2")) == 0);
    CHECK_EQ_INT(o.spec.gpus_per_node, 2);
    CHECK_EQ_STR(o.spec.gpu_model, "");
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--gres=gpu")) == 0);
    CHECK_EQ_INT(o.spec.gpus_per_node, 1);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--gres=gpu:2,shard:1")), -1);
    CHECK(strstr(o.err, "'shard' is not supported here"));
    slurmopt_free(&o);
    /* --gpus is the job's total: split over the nodes, evenly. */
    REQUIRE(so_run(&o, NULL, ARGS("-N", "2", "--gpus=h100:16")) == 0);
    CHECK_EQ_INT(o.spec.gpus_per_node, 8);
    CHECK_EQ_STR(o.spec.gpu_model, "h100");
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("-G", "4")) == 0);
    CHECK_EQ_INT(o.spec.nodes, 1);
    CHECK_EQ_INT(o.spec.gpus_per_node, 4);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-N", "3", "--gpus", "8")), -1);
    CHECK(strstr(o.err, "not a multiple of --nodes 3"));
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--gpus-per-node=v100:2")) == 0);
    CHECK_EQ_INT(o.spec.gpus_per_node, 2);
    CHECK_EQ_STR(o.spec.gpu_model, "v100");
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--ntasks-per-node=4", "--gpus-per-task=2")) == 0);
    CHECK_EQ_INT(o.spec.gpus_per_task, 2);
    CHECK_EQ_INT(o.spec.gpus_per_node, 8);
    slurmopt_free(&o);
    /* --cpus-per-gpu: the CPUs of each task follow. */
    REQUIRE(so_run(&o, NULL, ARGS("--gpus-per-node=4", "--ntasks-per-node=4", "--cpus-per-gpu=6")) == 0);
    CHECK_EQ_INT(o.spec.cpus_per_gpu, 6);
    CHECK_EQ_INT(o.spec.cpus_per_task, 6);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--gpus-per-node=3", "--ntasks-per-node=2", "--cpus-per-gpu=5")) == 0);
    CHECK_EQ_INT(o.spec.cpus_per_task, 8); /* ceil(15/2) */
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--cpus-per-gpu=4")), -1);
    CHECK(strstr(o.err, "needs GPUs"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--gpus=2", "--gpus-per-node=2")), -1);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--gpu-model", "H100", "--gres=gpu:a100:1")), -1);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--gpu-model", "A100", "--gpus-per-node", "2", "--exclusive")) == 0);
    CHECK_EQ_STR(o.spec.gpu_model, "A100");
    CHECK(o.spec.exclusive);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--exclusive=user")), -1);
    slurmopt_free(&o);
}

TEST(slurmopt_memory)
{
    slurmopt o;
    REQUIRE(so_run(&o, NULL, ARGS("--mem=16G")) == 0);
    CHECK_EQ_INT(o.spec.mem_bytes, 16ull << 30);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--mem", "512")) == 0);
    CHECK_EQ_INT(o.spec.mem_bytes, 512ull << 20);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--mem=0")) == 0);
    CHECK(o.spec.mem_all);
    CHECK_EQ_INT(o.spec.mem_bytes, 0);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--mem-per-cpu=2G", "-c", "4", "--ntasks-per-node=2")) == 0);
    CHECK_EQ_INT(o.spec.mem_bytes, 16ull << 30);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--mem-per-gpu=40G", "--gpus-per-node=2")) == 0);
    CHECK_EQ_INT(o.spec.mem_bytes, 80ull << 30);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--mem=4G", "--mem-per-cpu=1G")), -1);
    CHECK(strstr(o.err, "mutually exclusive"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--mem=lots")), -1);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--gpu-mem=40G")) == 0);
    CHECK_EQ_INT(o.spec.min_gpu_mem, 40ull << 30);
    slurmopt_free(&o);
}

TEST(slurmopt_time_forms)
{
    static const struct {
        const char *s;
        uint64_t secs;
    } ok[] = {{"90", 5400},
              {"5:30", 330},
              {"1:30:00", 5400},
              {"2-0", 172800},
              {"1-12", 129600},
              {"1-2:30", 95400},
              {"1-2:30:15", 95415},
              {"UNLIMITED", JOB_TIME_UNLIMITED},
              {"infinite", JOB_TIME_UNLIMITED}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t t = 0;
        CHECK_EQ_INT(slurmopt_parse_time(ok[i].s, &t), 0);
        CHECK_EQ_INT(t, ok[i].secs);
    }
    const char *bad[] = {"", "abc", "1:2:3:4", "-5", "1-", "1:99"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t t;
        CHECK_EQ_INT(slurmopt_parse_time(bad[i], &t), -1);
    }
    slurmopt o;
    REQUIRE(so_run(&o, NULL, ARGS("-t", "2-00:00:00")) == 0);
    CHECK_EQ_INT(o.spec.time_limit_s, 172800);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--time=UNLIMITED")) == 0);
    CHECK_EQ_INT(o.spec.time_limit_s, JOB_TIME_UNLIMITED);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-t", "soon")), -1);
    CHECK(strstr(o.err, "bad -t 'soon'"));
    slurmopt_free(&o);
}

TEST(slurmopt_lifecycle)
{
    slurmopt o;
    REQUIRE(so_run(&o, NULL, ARGS("-t", "60", "--signal=B:USR1@120", "--no-requeue", "-a", "0-20:5%2")) == 0);
    CHECK_EQ_INT(o.spec.warn_signal, 10); /* SIGUSR1 on Linux */
    CHECK_EQ_INT(o.spec.warn_secs, 120);
    CHECK(o.spec.signal_batch_only);
    CHECK(o.spec.no_requeue);
    CHECK_EQ_STR(o.spec.array, "0-20:5%2");
    slurmopt_free(&o);
    REQUIRE(so_run(&o, "#SBATCH --no-requeue\n", ARGS("--requeue")) == 0);
    CHECK(!o.spec.no_requeue); /* the command line wins */
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--signal", "TERM", "-t", "10")) == 0);
    CHECK_EQ_INT(o.spec.warn_signal, 15);
    CHECK_EQ_INT(o.spec.warn_secs, 60);
    CHECK(!o.spec.signal_batch_only);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--signal=R:USR1", "-t", "10")), -1);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--array=1,3,5")) == 0);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--array=5-1")), -1);
    CHECK(strstr(o.err, "--array"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--array=0-20000")), -1);
    slurmopt_free(&o);
}

TEST(slurmopt_dependencies)
{
    slurmopt o;
    REQUIRE(so_run(&o, NULL,
                   ARGS("-d", "afterok:5:6,afterany:7,afternotok:8,after:9,singleton", "--after-ok", "10",
                        "--after-any", "11:12")) == 0);
    CHECK_EQ_INT(o.spec.n_after_ok, 3);
    CHECK_EQ_INT(o.spec.after_ok[0], 5);
    CHECK_EQ_INT(o.spec.after_ok[2], 10);
    CHECK_EQ_INT(o.spec.n_after_any, 3);
    CHECK_EQ_INT(o.spec.n_after_notok, 1);
    CHECK_EQ_INT(o.spec.after_notok[0], 8);
    CHECK_EQ_INT(o.spec.n_after, 1);
    CHECK_EQ_INT(o.spec.after[0], 9);
    CHECK(o.spec.singleton);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--dependency=afterok:100_3")) == 0);
    CHECK_EQ_INT(o.spec.n_after_ok, 1);
    CHECK_EQ_INT(o.spec.after_ok[0], 103);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--dependency=afterok:100_42")), -1);
    CHECK(strstr(o.err, "no task 42"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-d", "afterok:1?afterany:2")), -1);
    CHECK(strstr(o.err, "'?'"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-d", "aftercorr:1")), -1);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-d", "afterok:x")), -1);
    slurmopt_free(&o);
    /* The command line's -d replaces the script's. */
    REQUIRE(so_run(&o, "#SBATCH -d afterok:1\n", ARGS("-d", "afterany:2")) == 0);
    CHECK_EQ_INT(o.spec.n_after_ok, 0);
    CHECK_EQ_INT(o.spec.n_after_any, 1);
    slurmopt_free(&o);
}

static const char *so_find_env(const slurmopt *o, const char *kv)
{
    for (size_t i = 0; i < o->spec.n_env; i++)
        if (strcmp(o->spec.env[i], kv) == 0)
            return o->spec.env[i];
    return NULL;
}

TEST(slurmopt_export)
{
    slurmopt o;
    REQUIRE(so_run(&o, NULL, ARGS("-J", "x")) == 0); /* ALL by default */
    CHECK_EQ_INT(o.spec.n_env, 4);
    CHECK(so_find_env(&o, "PROJECT=vision"));
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--export=NONE")) == 0);
    CHECK_EQ_INT(o.spec.n_env, 0);
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--export=PROJECT,SEED=3", "--env", "A=1")) == 0);
    CHECK_EQ_INT(o.spec.n_env, 3);
    CHECK(so_find_env(&o, "A=1") && so_find_env(&o, "SEED=3") && so_find_env(&o, "PROJECT=vision"));
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL, ARGS("--export=ALL,PROJECT=nlp")) == 0);
    CHECK_EQ_INT(o.spec.n_env, 4);
    CHECK(so_find_env(&o, "PROJECT=nlp") && !so_find_env(&o, "PROJECT=vision"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--export=9X")), -1);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--env", "NOEQUALS")), -1);
    slurmopt_free(&o);
    /* Bounded: a clear error, not a refusal by the leader. */
    static char big[SLURMOPT_ENV_BYTES_MAX / 2];
    memset(big, 'x', sizeof big - 1);
    memcpy(big, "BIG=", 4);
    static char big2[sizeof big];
    memcpy(big2, big, sizeof big);
    big2[2] = 'H';
    char *env[] = {big, big2, big, NULL};
    slurmopt_ctx ctx = so_ctx;
    ctx.environ = env;
    slurmopt_init(&o);
    CHECK_EQ_INT(slurmopt_build(&o, &ctx), 0); /* BIG once (the first wins), BIH: under 1 MiB */
    slurmopt_free(&o);
    char big3[] = "BIJ=abc";
    char *env3[] = {big, big2, big3, NULL};
    ctx.environ = env3;
    slurmopt_init(&o);
    CHECK_EQ_INT(slurmopt_build(&o, &ctx), -1);
    CHECK(strstr(o.err, "--export=NONE"));
    slurmopt_free(&o);
}

TEST(slurmopt_wrap_parsable_wait)
{
    slurmopt o;
    REQUIRE(so_run(&o, NULL, ARGS("--wrap=echo hello", "--parsable", "-W")) == 0);
    CHECK_EQ_STR(o.spec.script, "#!/bin/sh\necho hello\n");
    CHECK(o.spec.batch && o.wrap && o.parsable && o.wait);
    CHECK_EQ_STR(o.spec.name, "wrap");
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--wrap", "true", "job.sh")), -1);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, "#SBATCH --wrap=true\n", NULL), -1);
    CHECK(strstr(o.err, "job.sh line 1:"));
    slurmopt_free(&o);
}

TEST(slurmopt_script_words_and_comments)
{
    slurmopt o;
    const char *script = "#!/bin/bash\n"
                         "\n"
                         "# a comment\n"
                         "#SBATCH --job-name=\"two words\"   # the name\n"
                         "#SBATCH -o 'out %j.log' --comment \"say \\\"hi\\\"\"\n"
                         "#SBATCH --account=a\\ b#notacomment\n"
                         "#JZ --site north\n"
                         "#SBATCH\n"
                         "echo start\n"
                         "#SBATCH --nodes=99\n";
    REQUIRE(so_run(&o, script, NULL) == 0);
    CHECK_EQ_STR(o.spec.name, "two words");
    CHECK_EQ_STR(o.spec.output, "out %j.log");
    CHECK_EQ_STR(o.spec.account, "a b#notacomment");
    CHECK_EQ_STR(o.spec.site, "north");
    CHECK_EQ_INT(o.spec.nodes, 0); /* after the first command: not an option */
    REQUIRE(o.nwarnings == 1);
    CHECK_EQ_STR(o.warnings[0], "job.sh line 5: warning: --comment has no effect here (ignored)");
    slurmopt_free(&o);
    /* The command line wins, whichever is read first. */
    REQUIRE(so_run(&o, "#SBATCH -N 4 -J fromscript\n", ARGS("-N", "2")) == 0);
    CHECK_EQ_INT(o.spec.nodes, 2);
    CHECK_EQ_STR(o.spec.name, "fromscript");
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, "#!/bin/sh\n#SBATCH --name 'unterminated\n", NULL), -1);
    CHECK_EQ_STR(o.err, "job.sh line 2: unterminated ' quote: close it on the same line");
    slurmopt_free(&o);
}

TEST(slurmopt_errors_and_warnings)
{
    slurmopt o;
    CHECK_EQ_INT(so_run(&o, "#!/bin/sh\n#SBATCH -N 1\n#SBATCH --frobnicate=3\n", NULL), -1);
    CHECK_EQ_STR(o.err, "job.sh line 3: unrecognized option '--frobnicate' (see jz submit --help; sbatch's "
                        "options are taken)");
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("-Z")), -1);
    CHECK(strstr(o.err, "invalid option -- 'Z'"));
    slurmopt_free(&o);
    const char *unsupported[] = {
        "--licenses=matlab", "--tmp=10G",   "-w",          "--exclude=n1", "--begin=now+1h",
        "--deadline=now",    "--mincpus=4", "--uid=0",     "--test-only",  "-x",
        "--priority=10",     "--bb=x",      "--network=x", "--container=x"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const char *const words[] = {unsupported[i], "v", NULL};
        CHECK_EQ_INT(so_run(&o, NULL, words), -1);
        CHECK(strstr(o.err, "is not supported here"));
        slurmopt_free(&o);
    }
    /* -M: one cluster (this network), its name for --parsable's ID;CLUSTER. */
    {
        const char *const words[] = {"-M", "c1", NULL};
        CHECK_EQ_INT(so_run(&o, NULL, words), 0);
        CHECK_EQ_STR(o.cluster, "c1");
        slurmopt_free(&o);
        const char *const two[] = {"--clusters=c1,c2", NULL};
        CHECK_EQ_INT(so_run(&o, NULL, two), -1);
        CHECK(strstr(o.err, "one cluster name only"));
        slurmopt_free(&o);
    }
    CHECK_EQ_INT(so_run(&o, "#SBATCH --nodelist=gpu[01-04]\n", NULL), -1);
    CHECK_EQ_STR(o.err,
                 "job.sh line 1: --nodelist is not supported here (it would change the job's resources, "
                 "limits or placement, which jz cannot honour): remove it");
    slurmopt_free(&o);
    REQUIRE(so_run(&o, NULL,
                   ARGS("--mail-type=END,FAIL", "--mail-user=a@b", "--mail-type=ALL", "--nice=10", "-k",
                        "--hint=nomultithread", "-m", "block", "--oversubscribe", "--gpu-bind=closest")) ==
            0);
    CHECK_EQ_INT(o.nwarnings, 8); /* one per option */
    CHECK_EQ_STR(o.warnings[0], "warning: --mail-type has no effect here (ignored)");
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--nodes")), -1);
    CHECK(strstr(o.err, "requires an argument"));
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--hold=yes")), -1);
    slurmopt_free(&o);
    CHECK_EQ_INT(so_run(&o, NULL, ARGS("--no")), -1);
    CHECK(strstr(o.err, "ambiguous"));
    slurmopt_free(&o);
}

TEST(slurmopt_extra_options_passed_back)
{
    static const slurmopt_extra extra[] = {{"json", false}, {"socket", true}, {NULL, false}};
    char *argv[] = {"--json", "--socket", "/run/s", "-N", "2", "--", "true"};
    slurmopt o;
    slurmopt_init(&o);
    REQUIRE(slurmopt_parse_args(&o, 7, argv, extra) == 0);
    REQUIRE(o.npassed == 2);
    CHECK_EQ_STR(o.passed[0], "--json");
    CHECK_EQ_STR(o.passed[1], "--socket=/run/s");
    CHECK(o.dashdash && o.npos == 1);
    slurmopt_free(&o);
}

TEST(slurmopt_real_world_headers)
{
    slurmopt o;
    /* A PyTorch DDP job as clusters document it. */
    const char *ddp = "#!/bin/bash -l\n"
                      "#SBATCH --job-name=ddp-resnet      # create a short name for your job\n"
                      "#SBATCH --nodes=2                  # node count\n"
                      "#SBATCH --ntasks-per-node=4        # total number of tasks per node\n"
                      "#SBATCH --cpus-per-task=8          # cpu-cores per task\n"
                      "#SBATCH --mem=256G                 # total memory per node\n"
                      "#SBATCH --gres=gpu:4               # number of gpus per node\n"
                      "#SBATCH --time=1-00:00:00          # total run time limit (D-HH:MM:SS)\n"
                      "#SBATCH --mail-type=begin          # send email when job begins\n"
                      "#SBATCH --output=%x-%j.out\n"
                      "\n"
                      "export MASTER_PORT=12340\n"
                      "srun python train.py\n";
    REQUIRE(so_run(&o, ddp, NULL) == 0);
    CHECK_EQ_STR(o.spec.name, "ddp-resnet");
    CHECK_EQ_INT(o.spec.nodes, 2);
    CHECK_EQ_INT(o.spec.tasks_per_node, 4);
    CHECK_EQ_INT(o.spec.cpus_per_task, 8);
    CHECK_EQ_INT(o.spec.mem_bytes, 256ull << 30);
    CHECK_EQ_INT(o.spec.gpus_per_node, 4);
    CHECK_EQ_INT(o.spec.time_limit_s, 86400);
    CHECK_EQ_STR(o.spec.output, "%x-%j.out");
    CHECK_EQ_INT(o.nwarnings, 1);
    slurmopt_free(&o);
    /* An array sweep with a throttle, a partition and a QOS. */
    const char *sweep = "#!/bin/bash\n"
                        "#SBATCH -J sweep\n"
                        "#SBATCH -p gpu\n"
                        "#SBATCH -q normal\n"
                        "#SBATCH -A proj123\n"
                        "#SBATCH -a 0-99%10\n"
                        "#SBATCH -c 4\n"
                        "#SBATCH --mem-per-cpu=4000\n"
                        "#SBATCH -G 1\n"
                        "#SBATCH -t 04:00:00\n"
                        "#SBATCH -o logs/%A_%a.out\n"
                        "#SBATCH -e logs/%A_%a.err\n"
                        "python sweep.py --idx $SLURM_ARRAY_TASK_ID\n";
    REQUIRE(so_run(&o, sweep, NULL) == 0);
    CHECK_EQ_STR(o.spec.array, "0-99%10");
    CHECK_EQ_STR(o.spec.partition, "gpu");
    CHECK_EQ_INT(o.spec.gpus_per_node, 1);
    CHECK_EQ_INT(o.spec.nodes, 1);
    CHECK_EQ_INT(o.spec.mem_bytes, 4ull * 4000 << 20);
    CHECK_EQ_INT(o.spec.time_limit_s, 4 * 3600);
    slurmopt_free(&o);
    /* An MPI job with a node range, exclusive nodes and a dependency. */
    const char *mpi = "#!/bin/sh\n"
                      "#SBATCH --nodes=4-8 --ntasks=128 --exclusive\n"
                      "#SBATCH --constraint=\"ib&avx512\"\n"
                      "#SBATCH --dependency=afterok:100_0\n"
                      "#SBATCH --export=NONE\n"
                      "mpirun ./app\n";
    REQUIRE(so_run(&o, mpi, NULL) == 0);
    CHECK_EQ_INT(o.spec.nodes, 4);
    CHECK_EQ_INT(o.spec.nodes_max, 8);
    CHECK_EQ_INT(o.spec.tasks_per_node, 32);
    CHECK(o.spec.exclusive);
    CHECK_EQ_STR(o.spec.constraint, "ib,avx512");
    CHECK_EQ_INT(o.spec.after_ok[0], 100);
    CHECK_EQ_INT(o.spec.n_env, 0);
    slurmopt_free(&o);
}

/* The table as jz submit --help lists it: names, short forms, values, and
 * whether an option acts here; every option listed parses as listed. */
TEST(slurmopt_option_table_for_help)
{
    slurmopt_info in;
    bool saw_nodes = false, saw_mail = false, saw_hold = false;
    size_t n = 0;
    for (size_t i = 0; slurmopt_option(i, &in); i++, n++) {
        CHECK(in.name && in.name[0] != '\0' && in.name[0] != '-');
        if (strcmp(in.name, "nodes") == 0) {
            saw_nodes = true;
            CHECK(in.shrt == 'N' && in.has_value && in.effective);
        } else if (strcmp(in.name, "mail-type") == 0) {
            saw_mail = true;
            CHECK(!in.effective); /* a warning, no effect */
        } else if (strcmp(in.name, "hold") == 0) {
            saw_hold = true;
            CHECK(in.shrt == 'H' && !in.has_value && in.effective);
        }
        if (!in.effective)
            continue;
        char opt[80];
        snprintf(opt, sizeof opt, "--%s", in.name);
        slurmopt o;
        slurmopt_init(&o);
        const char *words[4];
        int nwords = 0;
        words[nwords++] = opt;
        if (in.has_value)
            words[nwords++] = "1";
        words[nwords++] = "--";
        words[nwords++] = "true";
        if (slurmopt_parse_args(&o, nwords, (char *const *)words, NULL) != 0)
            test_fail(__FILE__, __LINE__, "%s as listed does not parse: %s", opt, o.err);
        slurmopt_free(&o);
    }
    CHECK(saw_nodes && saw_mail && saw_hold);
    CHECK(n > 40);
    CHECK(!slurmopt_option(n, &in)); /* false past the end */
}
