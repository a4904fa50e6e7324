/* test_utf8.c - text from strangers: checked, and shown without acting. */
#include <string.h>

#include "../../common/json.h"
#include "../../common/utf8.h"
#include "test.h"

TEST(utf8_valid_and_not)
{
    CHECK(utf8_valid("", 0));
    CHECK(utf8_valid("Rabat \xd8\xa7\xd9\x84\xd8\xb1\xd8\xa8\xd8\xa7\xd8\xb7 \xf0\x9f\x9a\x80", 23));
    CHECK(!utf8_valid("\xff", 1));
    CHECK(!utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    CHECK(!utf8_valid("\xed\xa0\x80", 3));     /* a surrogate */
    CHECK(!utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    CHECK(!utf8_valid("\xe2\x82", 2));         /* cut short */
}

TEST(utf8_term_escapes_what_would_act)
{
    buf b = BUF_INIT;
    const char *evil = "ok\x1b]0;pwned\x07 \xc2\x9b"
                       "2J\xff\n\tend";
    utf8_term(&b, evil, strlen(evil), true);
    CHECK_EQ_STR(buf_str(&b), "ok\\x1b]0;pwned\\x07 \\u009b2J\\xff\n\tend");
    buf_reset(&b);
    utf8_term(&b, "a\nb", 3, false);
    CHECK_EQ_STR(buf_str(&b), "a\\x0ab");
    /* A right-to-left override would show "fan" for "naf": escaped. */
    buf_reset(&b);
    utf8_term(&b, "x\xe2\x80\xaey \xe2\x81\xa6z", 10, false);
    CHECK_EQ_STR(buf_str(&b), "x\\u202ey \\u2066z");
    CHECK(!utf8_is_control(0x0627, false)); /* an Arabic letter is text */
    buf_free(&b);
}

/* A job name that is not UTF-8 once made jz queue --json invalid for
 * everyone: the writer now never emits bytes that are not UTF-8. */
TEST(json_strings_stay_valid_utf8)
{
    buf b = BUF_INIT;
    json j;
    json_init(&j, &b, false);
    json_arr_begin(&j);
    json_str(&j, "bad\xff\xfe name \xc2\x85 \xe2\x9c\x93");
    json_arr_end(&j);
    CHECK_EQ_STR(buf_str(&b), "[\"bad\\ufffd\\ufffd name \\u0085 \xe2\x9c\x93\"]");
    CHECK(utf8_valid(b.data, b.len));
    buf_free(&b);
}
