/* test_config.c - settings: defaults, file, flags, validation messages. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/config.h"
#include "test.h"

static int load(config *c, char *err, size_t errlen, int argc, char **argv)
{
    return config_load(c, argc, argv, err, errlen);
}

TEST(config_defaults)
{
    config c;
    char err[512];
    REQUIRE(load(&c, err, sizeof err, 0, NULL) == 0);
    CHECK_EQ_STR(c.site, "local");
    CHECK_EQ_STR(c.listen_host, "127.0.0.1");
    CHECK_EQ_INT(c.listen_port, 7070);
    CHECK_EQ_INT(c.heartbeat_interval_ms, 1000);
    CHECK_EQ_INT(c.node_timeout_ms, 5000);
    CHECK_EQ_INT(c.election_timeout_ms, 1000);
    CHECK_EQ_INT(c.election_timeout_rtts, 5);
    CHECK_EQ_INT(c.max_frame, 16u << 20);
    CHECK(c.topology_xml == NULL);
    CHECK(c.name != NULL && config_valid_name(c.name));
    CHECK(strstr(c.socket, "/jazarid.sock") != NULL);
    config_free(&c);
}

TEST(config_file_then_flags)
{
    char path[] = "/tmp/jz-config-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# a comment\n[jazarid]\nname = gpu-01   # trailing comment\nsite=rabat\n"
          "listen = [::1]:7171\nnode_timeout = 1500ms\nmax_frame = 64KiB\nstate_dir = /tmp/x\n",
          f);
    fclose(f);
    config c;
    char err[512];
    char *argv[] = {"--config", path, "--site", "fes", "--heartbeat-interval=2s", "--election-timeout-rtts",
                    "0"};
    int rc = load(&c, err, sizeof err, 7, argv);
    if (rc != 0)
        printf("    %s\n", err);
    REQUIRE(rc == 0);
    CHECK_EQ_STR(c.name, "gpu-01");
    CHECK_EQ_STR(c.site, "fes"); /* the flag wins */
    CHECK_EQ_STR(c.listen_host, "::1");
    CHECK_EQ_INT(c.listen_port, 7171);
    CHECK_EQ_INT(c.node_timeout_ms, 1500);
    CHECK_EQ_INT(c.heartbeat_interval_ms, 2000);
    CHECK_EQ_INT(c.election_timeout_rtts, 0); /* off */
    CHECK_EQ_INT(c.max_frame, 65536);
    CHECK_EQ_STR(c.socket, "/tmp/x/jazarid.sock");
    config_free(&c);
    unlink(path);
}

/* Each bad input is refused with a message that names it. */
static void expect_refused(int argc, char **argv, const char *needle)
{
    config c;
    char err[512] = "";
    int rc = load(&c, err, sizeof err, argc, argv);
    if (rc == 0 || !strstr(err, needle))
        test_fail(__FILE__, __LINE__, "%s %s: rc %d, message \"%s\" lacks \"%s\"", argv[0],
                  argc > 1 ? argv[1] : "", rc, err, needle);
    config_free(&c);
}

TEST(config_refuses_bad_input)
{
    char *a1[] = {"--nonsense", "1"};
    expect_refused(2, a1, "unknown flag '--nonsense'");
    char *a2[] = {"--listen", "localhost"};
    expect_refused(2, a2, "flag --listen: bad value 'localhost'");
    char *a3[] = {"--listen", "127.0.0.1:70000"};
    expect_refused(2, a3, "port from 1 to 65535");
    char *a4[] = {"--name", "bad name!"};
    expect_refused(2, a4, "bad value 'bad name!' for name");
    char *a5[] = {"--node-timeout", "soon"};
    expect_refused(2, a5, "a duration");
    char *a6[] = {"--max-frame", "10"};
    expect_refused(2, a6, "from 1KiB to 1GiB");
    char *a7[] = {"--controllers", "a@127.0.0.1:1,b127.0.0.1:2"};
    expect_refused(2, a7, "is not name@host:port");
    char *a8[] = {"--config", "/nonexistent/jazari.conf"};
    expect_refused(2, a8, "config /nonexistent/jazari.conf: cannot open");
    char *a9[] = {"--site"};
    expect_refused(1, a9, "needs a value");
    char *a10[] = {"positional"};
    expect_refused(1, a10, "unexpected argument");
    char *a11[] = {"--log-level", "loud"};
    expect_refused(2, a11, "one of error, warn, info, debug");
    char *a12[] = {"--gpu-isolation", "yes"};
    expect_refused(2, a12, "bad value 'yes' for gpu_isolation: expected one of: off on");
    char *a13[] = {"--cgroup-version", "3"};
    expect_refused(2, a13, "expected one of: auto 1 2");
    char *a14[] = {"--election-timeout-rtts", "1001"};
    expect_refused(2, a14, "for election_timeout_rtts: expected a whole number from 1 to 1000, or 0");
    char *a15[] = {"--election-timeout-rtts", "-1"};
    expect_refused(2, a15, "for election_timeout_rtts");
}

TEST(config_file_errors_name_the_line)
{
    char path[] = "/tmp/jz-config-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("name = ok\n\ncolour = blue\n", f);
    fclose(f);
    char *argv[] = {"--config", path};
    char want[128];
    snprintf(want, sizeof want, "config %s:3: unknown setting 'colour'", path);
    expect_refused(2, argv, want);
    f = fopen(path, "w");
    fputs("name\n", f);
    fclose(f);
    snprintf(want, sizeof want, "config %s:1: expected 'key = value'", path);
    expect_refused(2, argv, want);
    /* A key given twice does not silently win. */
    f = fopen(path, "w");
    fputs("site = rabat\nname = a\n site = fes\n", f);
    fclose(f);
    snprintf(want, sizeof want, "config %s:3: site is set twice (first on line 1)", path);
    expect_refused(2, argv, want);
    /* A NUL byte does not silently end the file. */
    f = fopen(path, "w");
    fwrite("name = a\nsite = x\0\ncolour = blue\n", 1, 33, f);
    fclose(f);
    snprintf(want, sizeof want, "config %s:2: a NUL byte", path);
    expect_refused(2, argv, want);
    unlink(path);
}

TEST(config_parsers)
{
    uint64_t v;
    CHECK(config_parse_duration_ms("250ms", &v) == 0 && v == 250);
    CHECK(config_parse_duration_ms("3", &v) == 0 && v == 3000);
    CHECK(config_parse_duration_ms("2m", &v) == 0 && v == 120000);
    CHECK(config_parse_duration_ms("-1s", &v) != 0);
    CHECK(config_parse_duration_ms("99999999999999999999s", &v) != 0);
    CHECK(config_parse_size("1GiB", &v) == 0 && v == 1u << 30);
    CHECK(config_parse_size("4096", &v) == 0 && v == 4096);
    CHECK(config_parse_size("1X", &v) != 0);
    CHECK(config_parse_size("18446744073709551615T", &v) != 0);
    char host[64];
    uint16_t port;
    CHECK(config_parse_hostport("10.1.2.3:80", host, sizeof host, &port) == 0 && port == 80);
    CHECK_EQ_STR(host, "10.1.2.3");
    CHECK(config_parse_hostport(":80", host, sizeof host, &port) != 0);
    CHECK(config_parse_hostport("h:", host, sizeof host, &port) != 0);
    CHECK(config_parse_hostport("h:0", host, sizeof host, &port) != 0);
    CHECK(config_valid_name("gpu-01.rabat"));
    CHECK(!config_valid_name("-x"));
    CHECK(!config_valid_name(""));
}

TEST(config_help_lists_every_setting)
{
    buf b = BUF_INIT;
    config_help(&b);
    const char *keys[] = {"--name",        "--site",   "--listen",       "--controllers",
                          "--state-dir",   "--socket", "--topology-xml", "--heartbeat-interval",
                          "--node-timeout"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strstr(buf_str(&b), keys[i]))
            test_fail(__FILE__, __LINE__, "help lacks %s", keys[i]);
    buf_free(&b);
}

TEST(config_example_file_is_valid)
{
    config c;
    char err[512];
    char *argv[] = {"--config", "deploy/jazarid.conf.example"};
    int rc = load(&c, err, sizeof err, 2, argv);
    if (rc != 0)
        printf("    %s\n", err);
    CHECK(rc == 0);
    CHECK_EQ_STR(c.name, "gpu-rabat-01");
    CHECK_EQ_STR(c.site, "rabat");
    config_free(&c);
}

/* http_listen: off by default and when empty; a numeric host:port
 * otherwise, named in the message when it is not one. */
TEST(config_http_listen)
{
    config c;
    char err[512];
    REQUIRE(load(&c, err, sizeof err, 0, NULL) == 0);
    CHECK_EQ_STR(c.http_listen, "");
    CHECK(c.http_host == NULL);
    config_free(&c);
    char *a1[] = {"--http-listen", "[::1]:7071", "--listen", "127.0.0.1:7171"};
    REQUIRE(load(&c, err, sizeof err, 4, a1) == 0);
    CHECK_EQ_STR(c.http_host, "::1");
    CHECK_EQ_INT(c.http_port, 7071);
    CHECK_EQ_STR(c.listen_host, "127.0.0.1"); /* each its own */
    CHECK_EQ_INT(c.listen_port, 7171);
    config_free(&c);
    char *a2[] = {"--http-listen", "127.0.0.1:7071", "--http-listen", ""};
    REQUIRE(load(&c, err, sizeof err, 4, a2) == 0);
    CHECK(c.http_host == NULL);
    config_free(&c);
    char *a3[] = {"--http-listen", "localhost:80"};
    expect_refused(2, a3, "flag --http-listen: bad value 'localhost:80' for http_listen");
    char *a4[] = {"--http-listen", "127.0.0.1"};
    expect_refused(2, a4, "or empty for none");
}
