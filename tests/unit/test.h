/* test.h - the unit-test harness: self-registering tests, checks, a summary. */
#ifndef JZ_TEST_H
#define JZ_TEST_H

#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);

/* Registers a test; called by the TEST macro's constructor. */
void test_register(const char *name, const char *file, test_fn fn);

/* Records a failed check in the running test; the test goes on. */
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The directory of the fixtures (tests/fixtures, set by the runner as
 * JAZARI_FIXTURES) and of the real machines' hwloc XML in it. */
const char *test_fixtures_dir(void);
const char *test_hwloc_dir(void);

#define TEST(name)                                                                                           \
    static void test_##name(void);                                                                           \
    __attribute__((constructor)) static void test_reg_##name(void)                                           \
    {                                                                                                        \
        test_register(#name, __FILE__, test_##name);                                                         \
    }                                                                                                        \
    static void test_##name(void)

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                               \
    } while (0)

/* Stops the test when cond is false: for checks later ones depend on. */
#define REQUIRE(cond)                                                                                        \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                                             \
            return;                                                                                          \
        }                                                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                                   \
    do {                                                                                                     \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                  \
        if (a_ != b_)                                                                                        \
            test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);                         \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                                   \
    do {                                                                                                     \
        const char *a_ = (a), *b_ = (b);                                                                     \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                                                 \
            test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",          \
                      b_ ? b_ : "(null)");                                                                   \
    } while (0)

#endif
