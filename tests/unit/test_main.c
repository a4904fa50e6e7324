/* test_main.c - runs every registered unit test (or those named on the
 * command line) and prints "N passed, N failed". */
#include "test.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_MAX 1024

static struct {
    const char *name;
    const char *file;
    test_fn fn;
} tests[TEST_MAX];
static int ntests;
static int current_failures;

void test_register(const char *name, const char *file, test_fn fn)
{
    if (ntests == TEST_MAX) {
        fprintf(stderr, "test.h: more than %d tests, raise TEST_MAX\n", TEST_MAX);
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].file = file;
    tests[ntests].fn = fn;
    ntests++;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    current_failures++;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

const char *test_fixtures_dir(void)
{
    return env_or("JAZARI_FIXTURES", "tests/fixtures");
}

const char *test_hwloc_dir(void)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/hwloc", test_fixtures_dir());
    return dir;
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

/* A test that runs past its time is a failure, not a hang of the suite:
 * the alarm names it and ends the run. */
#define TEST_TIMEOUT_S 120
static const char *running_test;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL (timed out after 120 s): ";
    if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0 ||
        write(STDOUT_FILENO, running_test, strlen(running_test)) < 0 || write(STDOUT_FILENO, "\n", 1) < 0)
        _exit(1);
    _exit(1);
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alarm);
    for (int i = 0; i < ntests; i++) {
        if (!selected(tests[i].name, argc, argv))
            continue;
        current_failures = 0;
        running_test = tests[i].name;
        alarm(TEST_TIMEOUT_S);
        tests[i].fn();
        alarm(0);
        if (current_failures == 0) {
            passed++;
            printf("ok   %s\n", tests[i].name);
        } else {
            failed++;
            printf("FAIL %s (%s)\n", tests[i].name, tests[i].file);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
