/* test_prog.c - the one line a site's program leaves (prog_summary): it
 * becomes a drain's reason, which the state takes only as printable
 * UTF-8 (fsm_printable), and a line of the daemon's log. */
#include <string.h>

#include "../../common/utf8.h"
#include "../../daemon/jzd.h"
#include "../../daemon/prog.h"
#include "test.h"

static void summary(const char *out, char *text, size_t len)
{
    prog_result r;
    memset(&r, 0, sizeof r);
    r.exit_status = 1;
    r.out = out;
    r.out_len = strlen(out);
    prog_summary(&r, "health program", "/x", 1000, text, len);
}

/* A health program's line of invalid bytes, an escape sequence or a long
 * message in Arabic once drained its node with the reason "(unprintable
 * text)" (the bytes went through as they came, cut inside a character),
 * and wrote the raw escape into the agent's log. */
TEST(prog_summary_is_printable_utf8_cut_between_characters)
{
    char text[16];
    summary("\xff\xfe\x1b[31mred\xc2\x9b\x01 x\nsecond line", text, sizeof text);
    CHECK_EQ_STR(text, "?? [31mred   x");
    CHECK(fsm_printable(text, sizeof text));
    /* 2-byte characters in a buffer of 16: 7 whole ones, not 7.5. */
    summary("\xd8\xa7\xd8\xa7\xd8\xa7\xd8\xa7\xd8\xa7\xd8\xa7\xd8\xa7\xd8\xa7\xd8\xa7", text, sizeof text);
    CHECK_EQ_INT((int)strlen(text), 14);
    CHECK(utf8_valid(text, strlen(text)) && fsm_printable(text, sizeof text));
    summary("\xf0\x9f\x9a\x80 ok \xe2\x82", text, sizeof text);
    CHECK_EQ_STR(text, "\xf0\x9f\x9a\x80 ok ??");
    char big[80];
    summary("\x01\x02\r", big, sizeof big); /* nothing printable: how it ended */
    CHECK_EQ_STR(big, "health program exited with status 1, without output");
}
